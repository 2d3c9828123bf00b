{#
  Renders a Python value as a SQL string literal (single quotes doubled), or `null`.
#}
{% macro recon_literal(value) -%}
    {%- if value is none -%}null{%- else -%}'{{ (value | string) | replace("'", "''") }}'{%- endif -%}
{%- endmacro %}
