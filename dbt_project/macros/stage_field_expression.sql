{#
  The SQL expression of one canonical field of a staged stream (see stage_stream for the mapping keys).
  `types` maps lower-cased raw column names to lower-cased types ({} when unknown, e.g. at parse time);
  `currency_sql` is the row's canonical currency expression (for `unit: minor`).
#}
{% macro stage_field_expression(system, stream, name, spec, types, currency_sql) -%}
    {%- set numeric_types = ['tinyint', 'smallint', 'integer', 'int', 'bigint', 'hugeint', 'utinyint', 'usmallint', 'uinteger', 'ubigint', 'double', 'float', 'real'] -%}
    {%- set field_type = spec.get('type') or 'string' -%}
    {%- if spec.get('value') is not none -%}
        {%- set expr = recon_literal(spec.get('value')) -%}
        {%- if field_type in ('decimal', 'integer') -%}{%- set expr = 'cast(' ~ expr ~ ' as decimal(20,4))' -%}{%- endif -%}
    {%- elif not spec.get('from') -%}
        {%- set expr = 'null' -%}
    {%- else -%}
        {%- set parts = (spec.get('from') | string).split('.') -%}
        {%- set column_name = parts[0] -%}
        {%- set path = parts[1:] -%}
        {%- if types and column_name | lower not in types -%}
            {{ exceptions.raise_compiler_error("stream " ~ system ~ "." ~ stream ~ ": field '" ~ name ~ "' maps from column '" ~ column_name ~ "', which raw_" ~ system ~ "." ~ stream ~ " does not have (columns: " ~ (types.keys() | list | sort | join(', ')) ~ ")") }}
        {%- endif -%}
        {%- set column = adapter.quote(column_name) -%}
        {%- set raw_type = types.get(column_name | lower, '') -%}
        {%- set is_numeric = (raw_type in numeric_types) or raw_type.startswith('decimal') or raw_type.startswith('numeric') -%}
        {#- text: the value as trimmed text, NULL when empty -#}
        {%- if path -%}
            {%- set text_raw = json_text(column, path) -%}
        {%- elif raw_type == 'json' -%}
            {%- set text_raw = json_text(column, []) -%}
        {%- else -%}
            {%- set text_raw = 'cast(' ~ column ~ ' as ' ~ type_text() ~ ')' -%}
        {%- endif -%}
        {%- set text = "nullif(trim(" ~ text_raw ~ "), '')" -%}
        {%- if field_type == 'decimal' or field_type == 'integer' -%}
            {%- if is_numeric and not path -%}
                {%- set expr = 'cast(' ~ column ~ ' as decimal(38,6))' -%}
            {%- else -%}
                {%- set expr = dbt.safe_cast(text, 'decimal(38,6)') -%}
            {%- endif -%}
            {%- if spec.get('unit') == 'minor' -%}
                {%- set expr = '(' ~ expr ~ ' * ' ~ minor_unit_factor(currency_sql or 'null') ~ ')' -%}
            {%- endif -%}
            {%- if spec.get('sign') == 'abs' -%}
                {%- set expr = 'abs(' ~ expr ~ ')' -%}
            {%- elif spec.get('sign') == 'negate' -%}
                {%- set expr = '(-' ~ expr ~ ')' -%}
            {%- endif -%}
            {%- if field_type == 'integer' -%}
                {%- set expr = 'cast(' ~ expr ~ ' as bigint)' -%}
            {%- endif -%}
        {%- elif field_type == 'json_array_length' -%}
            {%- if raw_type.endswith('[]') and not path -%}
                {%- set expr = 'len(' ~ column ~ ')' -%}
            {%- else -%}
                {%- set expr = json_array_length(column, path) -%}
            {%- endif -%}
        {%- elif field_type == 'boolean' -%}
            {%- if raw_type == 'boolean' and not path -%}
                {%- set expr = column -%}
            {%- else -%}
                {%- set expr = "case when lower(" ~ text ~ ") in ('true', 't', '1', 'yes', 'y') then true when lower(" ~ text ~ ") in ('false', 'f', '0', 'no', 'n') then false end" -%}
            {%- endif -%}
        {%- elif field_type == 'timestamp' -%}
            {%- set formats = spec.get('formats') or [] -%}
            {%- if not path and ('with time zone' in raw_type or raw_type == 'timestamptz') -%}
                {%- set expr = to_utc_timestamp(column) -%}
            {%- elif not path and raw_type.startswith('timestamp') -%}
                {%- set expr = local_to_utc_timestamp('cast(' ~ column ~ ' as timestamp)', spec.get('timezone')) -%}
            {%- elif not path and raw_type == 'date' -%}
                {%- set expr = local_to_utc_timestamp('cast(' ~ column ~ ' as timestamp)', spec.get('timezone')) -%}
            {%- else -%}
                {%- set expr = parse_timestamp(text, formats, spec.get('timezone')) -%}
            {%- endif -%}
        {%- else -%}
            {%- set expr = text -%}
        {%- endif -%}
    {%- endif -%}
    {%- if field_type == 'string' -%}
        {%- set values = spec.get('values') -%}
        {%- if values -%}
            {%- set mapped -%}
case when {{ expr }} is null then null
            {%- for word, canonical in values.items() %} when lower(trim({{ expr }})) = {{ recon_literal(word | string | lower | trim) }} then {{ recon_literal(canonical) }}{% endfor %}
            else {{ recon_literal(spec.get('default')) if spec.get('default') is not none else 'lower(trim(' ~ expr ~ '))' }} end
            {%- endset -%}
            {%- set expr = mapped -%}
        {%- endif -%}
        {%- if spec.get('transform') == 'upper' -%}
            {%- set expr = 'upper(' ~ expr ~ ')' -%}
        {%- elif spec.get('transform') == 'lower' -%}
            {%- set expr = 'lower(' ~ expr ~ ')' -%}
        {%- elif spec.get('transform') == 'trim' -%}
            {%- set expr = 'trim(' ~ expr ~ ')' -%}
        {%- endif -%}
    {%- endif -%}
{{ expr }}
{%- endmacro %}
