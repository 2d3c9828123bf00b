{#
  Text at a JSON path inside a column holding JSON (JSON type or JSON text). `path` is a list of keys;
  an empty list reads the whole value as text (a JSON string is unquoted). Dispatched: DuckDB uses
  json_extract_string, the default (Postgres) uses jsonb #>>.
#}
{% macro json_text(column, path) -%}
    {{ return(adapter.dispatch('json_text', 'order_recon')(column, path)) }}
{%- endmacro %}

{% macro default__json_text(column, path) -%}
(cast({{ column }} as jsonb) #>> '{ {{- path | join(',') -}} }')
{%- endmacro %}

{% macro duckdb__json_text(column, path) -%}
json_extract_string({{ column }}, '$
    {%- for key in path -%} ."{{ key }}" {%- endfor -%}
')
{%- endmacro %}
