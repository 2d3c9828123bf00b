{#
  The `systems_involved` text of a role-level diff: the system labels (role_system_label) of the given
  roles, in the given order, joined with ', ' (e.g. 'shop, psp'). Returned as Python text.
#}
{% macro systems_involved(roles) -%}
    {%- set labels = [] -%}
    {%- for role in roles -%}
        {%- if role_system_label(role) -%}{%- do labels.append(role_system_label(role)) -%}{%- endif -%}
    {%- endfor -%}
    {%- do return(labels | join(', ')) -%}
{%- endmacro %}
