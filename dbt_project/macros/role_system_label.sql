{#
  The `system` value of a role-level diff: the role's configured system names sorted and joined
  with `+` (e.g. `psp` or `adyen+stripe`). Returned as Python text; quote with recon_literal().
#}
{% macro role_system_label(role) -%}
    {%- do return(role_systems(role) | join('+')) -%}
{%- endmacro %}
