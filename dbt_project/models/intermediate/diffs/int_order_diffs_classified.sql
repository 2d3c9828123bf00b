-- The diff candidates as of D with staleness applied: a candidate whose involved roles include a stale
-- role (a stale system of that role) is suppressed, and names the stale systems that held it.
{{ config(materialized='table') }}

with

candidates as (

    select * from {{ ref('int_order_diffs_candidates') }}

),

freshness as (

    select * from {{ ref('int_system_freshness') }}

),

stale_systems as (

    select system, role
    from freshness
    where is_stale

),

suppressions as (

    select
        candidates.order_id,
        candidates.diff_type,
        candidates.system,
        {{ dbt.listagg('stale_systems.system', "', '", 'order by stale_systems.system') }} as stale_systems
    from candidates
    inner join stale_systems
        on candidates.roles_involved like '%,' || stale_systems.role || ',%'
    group by candidates.order_id, candidates.diff_type, candidates.system

)

select
    candidates.*,
    suppressions.stale_systems is not null as is_suppressed,
    suppressions.stale_systems
from candidates
left join suppressions
    on candidates.order_id = suppressions.order_id
    and candidates.diff_type = suppressions.diff_type
    and candidates.system = suppressions.system
