{#
  The elements of a JSON array held in a column (at a JSON path, a list of keys), as rows: a lateral
  join to write after `from <relation>`, giving one row per element with the element, as JSON, in
  `alias.element_column`. A NULL, a missing path or a value that is not an array gives no rows (the row
  before the join is dropped; callers keep the parent row apart). Dispatched: DuckDB unnests
  json_extract(column, '$.path[*]') (text that is not JSON gives no rows), the default (Postgres) uses
  jsonb_array_elements.
#}
{% macro json_array_elements(column, path, alias, element_column) -%}
    {{ return(adapter.dispatch('json_array_elements', 'order_recon')(column, path, alias, element_column)) }}
{%- endmacro %}

{% macro default__json_array_elements(column, path, alias, element_column) -%}
{%- set at_path = "(cast(" ~ column ~ " as jsonb) #> '{" ~ (path | join(',')) ~ "}')" -%}
cross join lateral jsonb_array_elements(
    case when jsonb_typeof({{ at_path }}) = 'array' then {{ at_path }} else cast('[]' as jsonb) end
) as {{ alias }}({{ element_column }})
{%- endmacro %}

{% macro duckdb__json_array_elements(column, path, alias, element_column) -%}
cross join unnest(
    case when json_valid({{ column }}) then json_extract({{ column }}, '$
    {%- for key in path -%} ."{{ key }}" {%- endfor -%}
    [*]') end
) as {{ alias }}({{ element_column }})
{%- endmacro %}
