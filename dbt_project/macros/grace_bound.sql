{#
  Grace windows (rules.grace_hours, per diff type; 0 when not configured). A diff whose rule has a
  grace window fires as of D only once its anchor is strictly below cutoff(D) - grace.
#}
{% macro grace_bound(diff_type, day=none) -%}
    {%- set grace = (recon_config().rules.get('grace_hours') or {}).get(diff_type) or 0 -%}
{{ as_of_cutoff(grace, day) }}
{%- endmacro %}

{#- The condition "the grace window of `diff_type` counted from `anchor` has passed as of D". -#}
{% macro grace_passed(diff_type, anchor, alias=none) -%}
{{ (alias ~ '.') if alias else '' }}{{ anchor }} < {{ grace_bound(diff_type) }}
{%- endmacro %}
