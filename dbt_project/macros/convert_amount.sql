{#
  An amount converted into the order's currency: unchanged when either currency is NULL or they are
  equal; round(amount * rate, 4) with the rules.fx_rates rate (record currency -> order currency);
  NULL when no rate is configured (see fx_rate_is_missing). Rendered as a CASE over the configured rates.
#}
{% macro convert_amount(amount, from_currency, to_currency) -%}
    {%- set rates = recon_config().rules.get('fx_rates') or [] -%}
case
        when {{ from_currency }} is null or {{ to_currency }} is null or {{ from_currency }} = {{ to_currency }}
            then {{ amount }}
    {%- for r in rates %}
        when {{ from_currency }} = {{ recon_literal(r['from'] | upper) }} and {{ to_currency }} = {{ recon_literal(r['to'] | upper) }}
            then cast(round({{ amount }} * cast({{ r['rate'] }} as decimal(20,8)), 4) as decimal(20,4))
    {%- endfor %}
    end
{%- endmacro %}
