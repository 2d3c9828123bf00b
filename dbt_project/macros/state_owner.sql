{#
  The owner of a canonical order state as a SQL expression: owners.by_state[state], else owners.fallback.
#}
{% macro state_owner(state) -%}
    {%- set owners = recon_config().owners -%}
    {#- No by_state (e.g. a config without owners): the fallback, not a CASE with no WHEN. -#}
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
