{#
  A typed empty relation with a role's staged columns (lineage + canonical): what int_<role>_unioned
  selects when no system plays the role, so downstream models compile and simply find no rows.
#}
{% macro empty_role_relation(role) -%}
select
    {%- for name, type in lineage_columns() + role_columns(role) %}
    cast(null as {{ engine_type(type) }}) as {{ name }}{{ "," if not loop.last }}
    {%- endfor %}
where 1 = 0
{%- endmacro %}
