{#
  True when at least one system plays `role`. Rules that need an unconfigured role are off.
#}
{% macro role_is_configured(role) -%}
    {%- do return((role_systems(role) | length) > 0) -%}
{%- endmacro %}
