{#
  True when both currencies are known, differ, and rules.fx_rates has no rate from -> to.
#}
{% macro fx_rate_is_missing(from_currency, to_currency) -%}
    {%- set rates = recon_config().rules.get('fx_rates') or [] -%}
({{ from_currency }} is not null and {{ to_currency }} is not null and {{ from_currency }} <> {{ to_currency }}
    {%- for r in rates %}
    and not ({{ from_currency }} = {{ recon_literal(r['from'] | upper) }} and {{ to_currency }} = {{ recon_literal(r['to'] | upper) }})
    {%- endfor %})
{%- endmacro %}
