{#
  Schemas are exactly `staging`, `intermediate` and `marts` (the folder's `+schema`), never
  `<target schema>_<custom>`: analysts and the Dagster assets query them by these names.
  Nodes without a custom schema (tests' audit tables, seeds) go to the target schema.
#}
{% macro generate_schema_name(custom_schema_name, node) -%}
    {%- if custom_schema_name is none -%}
        {{ target.schema | trim }}
    {%- else -%}
        {{ custom_schema_name | trim }}
    {%- endif -%}
{%- endmacro %}
