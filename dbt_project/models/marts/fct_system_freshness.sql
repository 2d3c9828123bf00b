-- Freshness history: one row per (as_of_date, system): when the system last delivered as of D and
-- whether it was stale, how many of its landed rows were visible, and what is wrong with it if anything. Incremental: a run of D replaces exactly D's rows.
{{ day_history() }}

with

freshness as (

    select * from {{ ref('int_system_freshness') }}

)

select
    as_of_date,
    system,
    role,
    last_seen_at,
    freshness_hours,
    is_stale,
    landed_rows,
    visible_rows,
    health_reason
from freshness
