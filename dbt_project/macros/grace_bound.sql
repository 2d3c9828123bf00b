{#
  The timestamp literal a diff's grace anchor must be strictly below to show as of D:
  cutoff(D) - rules.grace_hours[diff_type] (0 when not configured).
#}
{% macro grace_bound(diff_type) -%}
    {%- set grace = (recon_config().rules.get('grace_hours') or {}).get(diff_type) or 0 -%}
{{ as_of_cutoff(grace) }}
{%- endmacro %}
