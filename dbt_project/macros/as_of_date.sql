{#
  The as-of day D as a SQL date literal, e.g. `cast('2026-10-05' as date)`.
#}
{% macro as_of_date() -%}
cast('{{ as_of_date_value().isoformat() }}' as date)
{%- endmacro %}
