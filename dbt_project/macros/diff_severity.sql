{#
  The severity of a diff as a SQL expression: `critical` when amount_at_risk >= rules.severity.critical_amount,
  else rules.severity.by_diff_type[diff_type], else rules.severity.default (medium when unset).
#}
{% macro diff_severity(diff_type, amount_at_risk) -%}
    {%- set severity = recon_config().rules.get('severity') or {} -%}
    {%- set by_type = severity.get('by_diff_type') or {} -%}
case
        {%- if severity.get('critical_amount') is not none %}
        when {{ amount_at_risk }} >= cast({{ severity.get('critical_amount') }} as decimal(20,4)) then 'critical'
        {%- endif %}
        {%- for diff, level in by_type.items() | sort %}
        when {{ diff_type }} = {{ recon_literal(diff) }} then {{ recon_literal(level) }}
        {%- endfor %}
        else {{ recon_literal(severity.get('default') or 'medium') }}
    end
{%- endmacro %}
