{#
  Union of the staging models of every system (and stream) playing `role`, with the role's columns in
  a fixed order. The refs come from var recon.roles / recon.systems, which are present at parse time.
  A role with no systems yields empty_role_relation(role).
#}
{% macro union_role(role) -%}
    {%- set cfg = recon_config() -%}
    {%- set columns = lineage_columns() + role_columns(role) -%}
    {%- set models = [] -%}
    {%- for system in role_systems(role) -%}
        {%- for stream in ((cfg.systems.get(system) or {}).get('streams') or {}).keys() | sort -%}
            {%- do models.append('stg_' ~ system ~ '__' ~ stream) -%}
        {%- endfor -%}
    {%- endfor -%}
    {%- if models | length == 0 -%}
{{ empty_role_relation(role) }}
    {%- else -%}
        {%- for model in models %}
select
    {%- for name, type in columns %}
    {{ name }}{{ "," if not loop.last }}
    {%- endfor %}
from {{ ref(model) }}
{{ "union all" if not loop.last }}
        {%- endfor -%}
    {%- endif -%}
{%- endmacro %}
