{#
  The body of a generated staging model stg_<system>__<stream>: selects the raw Airbyte table
  raw_<system>.<stream> and renders it into the lineage columns plus the canonical columns of the
  system's role, following the stream's `fields` mapping from var recon.systems:
    from       `col` (plain column) or `col.a.b` (column holding JSON, at path $.a.b); value: a constant
    type       string | decimal | integer | timestamp | json_array_length | boolean
    unit       minor: divide by the currency's minor-unit factor (uses the row's canonical currency)
    sign       abs | negate
    formats    timestamp patterns (strptime / epoch_seconds / epoch_millis); timezone for naive text
    values     case-insensitive vocabulary map; unmapped words kept lower-cased unless `default`
    transform  upper | lower | trim
  Casts go through text where the raw type is unknown (CSV varchar, JSONL json/varchar, Parquet native),
  using the raw column types when the relation exists. Empty strings are NULL. Only renaming, casting
  and unit conversion: no joins, no aggregation (the one filter leaves out rows that the contract
  checks quarantined, listed in recon_meta.contract_quarantined_ids). An unmapped canonical column is a typed NULL
  (`kind` defaults to charge / invoice / shipment for payments / invoices / fulfillments).

  A list nested in each row (a charge's `refunds`, an invoice's `credit_notes`; stage_nested_records)
  adds one row per element, a refund / credit note of its own with the parent row's lineage.

  One row per raw row (and per nested element): every version of every record, with its delivery (lineage_columns): which
  version counts as of D is decided downstream (current_versions). A table, rebuilt each run, so each
  raw row is parsed once per run however many models read the stream.
#}
{% macro stage_stream(system, stream) -%}
    {{ config(materialized='table') }}
    {%- set cfg = recon_config() -%}
    {%- if system not in cfg.systems or stream not in (cfg.systems[system].get('streams') or {}) -%}
        {{ exceptions.raise_compiler_error("stage_stream: stream '" ~ system ~ "." ~ stream ~ "' is not in var recon.systems (regenerate the staging models)") }}
    {%- endif -%}
    {%- set role = cfg.systems[system].role -%}
    {%- set fields = cfg.systems[system].streams[stream].get('fields') or {} -%}
    {%- set relation = source('raw_' ~ system, stream) -%}
    {%- set types = raw_column_types(relation) -%}
    {#- Rows the contract checks quarantined are left out of the reconciliation (they become
        contract_violation exceptions instead). The view exists once the contracts have run. -#}
    {%- set quarantine = load_relation(source('recon_meta', 'contract_quarantined_ids')) -%}
    {%- set kind_defaults = {'payments': 'charge', 'invoices': 'invoice', 'fulfillments': 'shipment'} -%}
    {%- set rendered = {} -%}
    {#- currency first: `unit: minor` amounts need the row's canonical currency -#}
    {%- set names = [] -%}
    {%- for name, type in role_columns(role) -%}{%- if name == 'currency' -%}{%- do names.insert(0, (name, type)) -%}{%- else -%}{%- do names.append((name, type)) -%}{%- endif -%}{%- endfor -%}
    {%- for name, canonical_type in names -%}
        {%- set spec = fields.get(name) -%}
        {%- if spec is string -%}{%- set spec = {'from': spec} -%}{%- endif -%}
        {%- if spec is none and name == 'kind' and role in kind_defaults -%}{%- set spec = {'value': kind_defaults[role]} -%}{%- endif -%}
        {%- if spec is none -%}
            {%- do rendered.update({name: 'cast(null as ' ~ engine_type(canonical_type) ~ ')'}) -%}
        {%- else -%}
            {%- do rendered.update({name: 'cast(' ~ stage_field_expression(system, stream, name, spec, types, rendered.get('currency')) ~ ' as ' ~ engine_type(canonical_type) ~ ')'}) -%}
        {%- endif -%}
    {%- endfor -%}
    {%- set nested_field = {'payments': 'refunds', 'invoices': 'credit_notes'}.get(role) -%}
    {%- set nested_spec = fields.get(nested_field) if nested_field else none -%}
    {%- set nested = stage_nested_records(system, stream, role, nested_field, nested_spec, types, rendered) if nested_spec is mapping and nested_spec.get('from') else none -%}
    {%- set has_file = not types or '_ab_source_file_last_modified' in types %}
    {%- set has_url = not types or '_ab_source_file_url' in types %}
    {%- set extracted = to_utc_timestamp('_airbyte_extracted_at') %}
    {%- set available = to_utc_timestamp('_ab_source_file_last_modified') if has_file else 'cast(null as timestamp)' %}
    {%- set lineage -%}
        -- lineage
        {{ recon_literal(system) }} as source_system,
        {{ recon_literal(stream) }} as source_stream,
        cast(_airbyte_raw_id as {{ type_text() }}) as _airbyte_raw_id,
        {{ to_utc_timestamp('_airbyte_extracted_at') }} as _airbyte_extracted_at,
        {{ available }} as available_at,
        {{ ("coalesce(cast(_ab_source_file_url as " ~ type_text() ~ "), '') || '|'" if has_url else "'|'") }} || coalesce(cast({{ extracted }} as {{ type_text() }}), '') as delivery_id,
        coalesce({{ available }}, {{ extracted }}) as delivered_at,
    {%- endset %}
with

source as (

    select * from {{ relation }}
    {%- if quarantine is not none %}
    where not exists (
        select 1 from {{ quarantine }} as quarantined
        where quarantined.system = {{ recon_literal(system) }}
          and quarantined.stream = {{ recon_literal(stream) }}
          and quarantined._airbyte_raw_id = cast({{ relation }}._airbyte_raw_id as {{ type_text() }})
    )
    {%- endif %}
),

renamed as (

    select
        {{ lineage }}

        -- canonical {{ role }} columns
        {%- for name, canonical_type in role_columns(role) %}
        {{ rendered[name] }} as {{ name }}{{ "," if not loop.last }}
        {%- endfor %}

    from source

){%- if nested is not none %},

nested_elements as (

    -- one row per element of the list mapped as `{{ nested_field }}`
    select source.*, nested._recon_element
    from source
    {{ json_array_elements(nested.column, nested.path, 'nested', '_recon_element') }}

),

nested_renamed as (

    select
        {{ lineage }}

        -- canonical {{ role }} columns of each nested record
        {%- for name, canonical_type in role_columns(role) %}
        {{ nested.columns[name] }} as {{ name }}{{ "," if not loop.last }}
        {%- endfor %}

    from nested_elements

)
{%- endif %}

select * from renamed
{%- if nested is not none %}
union all
select * from nested_renamed
{%- endif %}
{%- endmacro %}

{#- The raw relation's column types ({name: type}, lower case); empty before it exists or at parse. -#}
{% macro raw_column_types(relation) -%}
    {%- set types = {} -%}
    {%- if execute -%}
        {%- set found = load_relation(relation) -%}
        {%- if found is not none -%}
            {%- for column in adapter.get_columns_in_relation(found) -%}
                {%- do types.update({column.name | lower: column.dtype | lower}) -%}
            {%- endfor -%}
        {%- endif -%}
    {%- endif -%}
    {%- do return(types) -%}
{%- endmacro %}

