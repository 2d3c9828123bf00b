{#
  The configured systems of a role, sorted (from var recon.roles). Empty list when the role is not configured.
#}
{% macro role_systems(role) -%}
    {%- set systems = recon_config().roles.get(role) or [] -%}
    {%- do return(systems | sort) -%}
{%- endmacro %}
