{#
  Number of elements of a JSON array held in a column (optionally at a JSON path, a list of keys).
  Dispatched: DuckDB json_array_length, default (Postgres) jsonb_array_length.
#}
{% macro json_array_length(column, path=[]) -%}
    {{ return(adapter.dispatch('json_array_length', 'order_recon')(column, path)) }}
{%- endmacro %}

{% macro default__json_array_length(column, path=[]) -%}
jsonb_array_length(cast({{ column }} as jsonb) #> '{ {{- path | join(',') -}} }')
{%- endmacro %}

{% macro duckdb__json_array_length(column, path=[]) -%}
json_array_length({{ column }}, '$
    {%- for key in path -%} ."{{ key }}" {%- endfor -%}
')
{%- endmacro %}
