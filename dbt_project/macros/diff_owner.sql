{#
  The owner of a diff as a SQL expression: owners.orphan_record_by_role[role] for orphans, else
  owners.by_diff_type[diff_type], else owners.fallback.
#}
{% macro diff_owner(diff_type, role) -%}
    {%- set owners = recon_config().owners -%}
    {#- A config without owners (or without these two keys) has no WHEN: the fallback, not an empty CASE. -#}
    {%- if not owners.get('orphan_record_by_role') and not owners.get('by_diff_type') -%}
{{ recon_literal(owners.get('fallback')) }}
    {%- else -%}
case
        {%- for r, owner in (owners.get('orphan_record_by_role') or {}).items() | sort %}
        when {{ diff_type }} = 'orphan_record' and {{ role }} = {{ recon_literal(r) }} then {{ recon_literal(owner) }}
        {%- endfor %}
        {%- for diff, owner in (owners.get('by_diff_type') or {}).items() | sort %}
        when {{ diff_type }} = {{ recon_literal(diff) }} then {{ recon_literal(owner) }}
        {%- endfor %}
        else {{ recon_literal(owners.get('fallback')) }}
    end
    {%- endif -%}
{%- endmacro %}
