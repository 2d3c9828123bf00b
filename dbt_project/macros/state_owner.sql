{#
  The owner of a canonical order state as a SQL expression: owners.by_state[state], else owners.fallback
  (the fallback alone when no state has an owner: a CASE needs at least one WHEN).
#}
{% macro state_owner(state) -%}
    {%- set owners = recon_config().owners -%}
    {%- if not owners.get('by_state') -%}
{{ recon_literal(owners.get('fallback')) }}
    {%- else -%}
case
        {%- for s, owner in (owners.get('by_state') or {}).items() | sort %}
        when {{ state }} = {{ recon_literal(s) }} then {{ recon_literal(owner) }}
        {%- endfor %}
        else {{ recon_literal(owners.get('fallback')) }}
    end
    {%- endif -%}
{%- endmacro %}
