{#
  Union of the staging models of every system (and stream) playing `role`, with the role's columns in
  a fixed order. The refs come from var recon.roles / recon.systems, which are present at parse time.
  A role with no systems yields empty_role_relation(role).

  Manual matches: when an owner links orphan records to an order by hand (`recon exceptions match`,
  table recon.manual_matches), the records of that system carrying the orphan order id are read as
  belonging to the matched order, so they count in that order's sums from then on.
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
    {#- source() at parse time puts the manual matches' producer upstream; load_relation: absent until a first match -#}
    {%- set matches = load_relation(source('owner_input', 'manual_matches')) if role in ('payments', 'invoices', 'fulfillments') else none -%}
    {%- if models | length == 0 -%}
{{ empty_role_relation(role) }}
    {%- else -%}
with

unioned as (
        {%- for model in models %}
    select
        {%- for name, type in columns %}
        {{ name }}{{ "," if not loop.last }}
        {%- endfor %}
    from {{ ref(model) }}
    {{ "union all" if not loop.last }}
        {%- endfor %}
)
        {%- if matches is none %}

select * from unioned
        {%- else %},

matches as (
    select system, record_order_id, matched_order_id
    from (
        select *, row_number() over (partition by system, record_order_id order by matched_at desc, match_id desc) as rn
        from {{ matches }}
    ) as ranked
    where rn = 1
)

select
            {%- for name, type in columns %}
    {% if name == 'order_id' %}coalesce(matches.matched_order_id, unioned.order_id){% else %}unioned.{{ name }}{% endif %} as {{ name }}{{ "," if not loop.last }}
            {%- endfor %}
from unioned
left join matches
    on matches.system = unioned.source_system
    and matches.record_order_id = unioned.order_id
        {%- endif -%}
    {%- endif -%}
{%- endmacro %}
