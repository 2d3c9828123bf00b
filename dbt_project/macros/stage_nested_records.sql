{#
  The canonical columns of the records nested in a staged stream's rows: a charge's refunds (payments
  role, field `refunds`) or an invoice's credit notes (invoices role, field `credit_notes`), mapped as
    refunds: {from: <column or column.json.path of the list>, id: <path>, amount: <path or spec>,
              at: <path or spec>, status: <path or spec, optional>}
  where the element keys are field specs (stage_field_expression) whose `from` is a path inside one
  element. Returns {'column': the quoted list column, 'path': [keys], 'columns': {name: SQL}}.

  Each element becomes a record of its own, netted like a separately delivered refund / credit note
  (docs/reconciliation-rules.md#refunds-and-credit-notes-three-shapes): kind refund / credit_note;
  key = the element's id; status = its mapped status, else succeeded / posted; amount = its amount;
  captured_at / issued_at = its time; order, customer and currency = the parent row's; updated_at =
  the later of its time and the parent version's updated_at (a refund is known once it happened and
  the version of the charge carrying it exists; two versions of a charge in one delivery then never
  make their refunds look like a key repeated inside one delivery).
#}
{% macro stage_nested_records(system, stream, role, field_name, spec, types, rendered) -%}
    {%- set shapes = {
        'payments': {'key': 'payment_id', 'kind': 'refund', 'status': 'succeeded', 'time': 'captured_at', 'total': 'refunded_amount'},
        'invoices': {'key': 'invoice_id', 'kind': 'credit_note', 'status': 'posted', 'time': 'issued_at', 'total': 'credited_amount'},
    } -%}
    {%- set shape = shapes[role] -%}
    {%- set parts = (spec.get('from') | string).split('.') -%}
    {%- if types and parts[0] | lower not in types -%}
        {{ exceptions.raise_compiler_error("stream " ~ system ~ "." ~ stream ~ ": field '" ~ field_name ~ "' maps from column '" ~ parts[0] ~ "', which raw_" ~ system ~ "." ~ stream ~ " does not have (columns: " ~ (types.keys() | list | sort | join(', ')) ~ ")") }}
    {%- endif -%}
    {%- set element_types = {'_recon_element': 'json'} -%}
    {%- set element = {} -%}
    {%- for key, canonical in [('id', 'string'), ('amount', 'decimal'), ('at', 'timestamp'), ('status', 'string')] -%}
        {%- set sub = spec.get(key) -%}
        {%- if sub is string -%}{%- set sub = {'from': sub} -%}{%- endif -%}
        {%- if sub is mapping and (sub.get('from') or sub.get('value') is not none) -%}
            {%- set inner = {} -%}
            {%- do inner.update(sub) -%}
            {%- if sub.get('from') -%}{%- do inner.update({'from': '_recon_element.' ~ sub.get('from')}) -%}{%- endif -%}
            {%- if not inner.get('type') -%}{%- do inner.update({'type': canonical}) -%}{%- endif -%}
            {%- do element.update({key: stage_field_expression(system, stream, field_name ~ '.' ~ key, inner, element_types, rendered.get('currency'))}) -%}
        {%- endif -%}
    {%- endfor -%}
    {%- set parent_updated = rendered['updated_at'] -%}
    {%- set at = element.get('at', 'cast(null as timestamp)') -%}
    {%- set columns = {} -%}
    {%- for name, canonical_type in role_columns(role) -%}
        {%- if name == shape.key -%}
            {%- set expr = element.get('id', 'null') -%}
        {%- elif name == 'kind' -%}
            {%- set expr = recon_literal(shape.kind) -%}
        {%- elif name == 'status' -%}
            {%- set expr = element.get('status') or recon_literal(shape.status) -%}
        {%- elif name == 'amount' -%}
            {%- set expr = element.get('amount', 'null') -%}
        {%- elif name == shape.time -%}
            {%- set expr = at -%}
        {%- elif name == shape.total -%}
            {%- set expr = 'null' -%}
        {%- elif name == 'updated_at' -%}
            {%- set expr = 'case when ' ~ at ~ ' is null then ' ~ parent_updated ~ ' when ' ~ parent_updated ~ ' is null or ' ~ at ~ ' > ' ~ parent_updated ~ ' then ' ~ at ~ ' else ' ~ parent_updated ~ ' end' -%}
        {%- else -%}
            {%- set expr = none -%}
        {%- endif -%}
        {#- the parent's order, customer and currency (already cast) -#}
        {%- do columns.update({name: rendered[name] if expr is none else 'cast(' ~ expr ~ ' as ' ~ canonical_type ~ ')'}) -%}
    {%- endfor -%}
    {%- do return({'column': adapter.quote(parts[0]), 'path': parts[1:], 'columns': columns}) -%}
{%- endmacro %}
