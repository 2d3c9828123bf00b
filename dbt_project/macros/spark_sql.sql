{#
  Spark variants (dbt-spark, warehouse.engine: spark) of the project's engine-specific macros. JSON is
  held as JSON text on Spark (the publisher writes DuckDB's JSON columns as text); Spark runs with ANSI
  casts, so a parse that may fail uses a try_ function and gives NULL, as on DuckDB.
#}

{#- A JSON path of keys as Spark's get_json_object spells it, a double-quoted string literal. -#}
{% macro spark_json_path(path) -%}
"$
{%- for key in path -%}['{{ key }}']{%- endfor -%}"
{%- endmacro %}

{% macro spark__json_text(column, path) -%}
get_json_object(cast({{ column }} as string), {{ spark_json_path(path) }})
{%- endmacro %}

{% macro spark__json_array_length(column, path=[]) -%}
json_array_length(get_json_object(cast({{ column }} as string), {{ spark_json_path(path) }}))
{%- endmacro %}

{#- Spark has no lateral join on a table function: a LATERAL VIEW (no rows for NULL, a missing path or
    a value that is not an array, as on DuckDB). Each element is its JSON text. -#}
{% macro spark__json_array_elements(column, path, alias, element_column) -%}
lateral view explode(
    from_json(get_json_object(cast({{ column }} as string), {{ spark_json_path(path) }}), 'array<string>')
) {{ alias }} as {{ element_column }}
{%- endmacro %}

{% macro spark__safe_cast(field, type) -%}
try_cast({{ field }} as {{ engine_type(type) }})
{%- endmacro %}

{#- strptime pattern -> Spark datetime pattern. Single letters parse one or two digits, as strptime does. -#}
{% macro spark_datetime_pattern(pattern) -%}
    {%- set parts = {'Y': 'yyyy', 'y': 'yy', 'm': 'M', 'd': 'd', 'H': 'H', 'I': 'h', 'M': 'm', 'S': 's',
                     'f': 'SSSSSS', 'z': 'XXX', 'Z': 'zzz', 'b': 'MMM', 'p': 'a', '%': '%'} -%}
    {%- set ns = namespace(out='', escape=false, literal='') -%}
    {%- for ch in pattern -%}
        {%- if ns.escape -%}
            {%- if ns.literal -%}{%- set ns.out = ns.out ~ "'" ~ ns.literal ~ "'" -%}{%- set ns.literal = '' -%}{%- endif -%}
            {%- set ns.out = ns.out ~ parts.get(ch, ch) -%}{%- set ns.escape = false -%}
        {%- elif ch == '%' -%}{%- set ns.escape = true -%}
        {%- elif ch.isalpha() -%}{%- set ns.literal = ns.literal ~ ch -%}
        {%- else -%}
            {%- if ns.literal -%}{%- set ns.out = ns.out ~ "'" ~ ns.literal ~ "'" -%}{%- set ns.literal = '' -%}{%- endif -%}
            {%- set ns.out = ns.out ~ ch -%}
        {%- endif -%}
    {%- endfor -%}
    {%- if ns.literal -%}{%- set ns.out = ns.out ~ "'" ~ ns.literal ~ "'" -%}{%- endif -%}
    {{- return(ns.out) -}}
{%- endmacro %}

{% macro spark__parse_timestamp(text, formats, timezone) -%}
    {%- if formats | length == 0 -%}
case
        when {{ text }} is null then null
        {#- iso_offset_regex() with Java's spelling of a space class. #}
        when {{ text }} rlike '[0-9]{2}:[0-9]{2}(:[0-9]{2}([.,][0-9]+)?)?\\s*([zZ]|[+-][0-9]{2}(:?[0-9]{2})?)$'
            then try_cast(regexp_replace({{ text }}, '\\s+([zZ+-])', '$1') as timestamp)
        else {{ local_to_utc_timestamp('try_cast(' ~ text ~ ' as timestamp)', timezone) }}
    end
    {%- else -%}
coalesce(
        {%- for f in formats %}
        {%- if f == 'epoch_seconds' %}
        timestamp_millis(cast(try_cast({{ text }} as decimal(38,3)) * 1000 as bigint))
        {%- elif f == 'epoch_millis' %}
        timestamp_millis(cast(try_cast({{ text }} as decimal(38,3)) as bigint))
        {%- elif '%z' in f or '%Z' in f %}
        try_to_timestamp({{ text }}, {{ recon_literal(spark_datetime_pattern(f)) }})
        {%- else %}
        {{ local_to_utc_timestamp('try_to_timestamp(' ~ text ~ ', ' ~ recon_literal(spark_datetime_pattern(f)) ~ ')', timezone) }}
        {%- endif %}{{ "," if not loop.last }}
        {%- endfor %}
    )
    {%- endif -%}
{%- endmacro %}
