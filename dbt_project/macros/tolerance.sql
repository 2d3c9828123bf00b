{#
  tol(expected, lines) = max(absolute, relative * |expected|, per_line * lines) from
  rules.amount_tolerance, as a SQL expression. With fx=true: fx_tol = max(tol, fx_tolerance * |expected|),
  for sums that contain amounts converted from another currency. NULL expected/lines count as 0.
#}
{% macro tolerance(expected, lines, fx=false) -%}
    {%- set rules = recon_config().rules -%}
    {%- set t = rules.get('amount_tolerance') or {} -%}
    {%- set base -%}
greatest(cast({{ t.get('absolute', 0) or 0 }} as decimal(20,4)), cast({{ t.get('relative', 0) or 0 }} as decimal(20,6)) * abs(coalesce({{ expected }}, 0)), cast({{ t.get('per_line', 0) or 0 }} as decimal(20,4)) * coalesce({{ lines }}, 0))
    {%- endset -%}
    {%- if fx -%}
greatest({{ base }}, cast({{ rules.get('fx_tolerance', 0) or 0 }} as decimal(20,6)) * abs(coalesce({{ expected }}, 0)))
    {%- else -%}
{{ base }}
    {%- endif -%}
{%- endmacro %}
