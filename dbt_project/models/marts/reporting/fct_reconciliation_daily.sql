-- Daily reconciliation figures: one row per as_of_date with the size of the book, how much of it is
-- reconciled, the diffs found and opened, and the reconciliation latency (order placed -> end of the first
-- as-of day on which it was RECONCILED), p50/p95 for the orders first reconciled that day and over the
-- 30 days up to it. Latency comes from the state history, so it is the same whether the days ran one by
-- one or as a backfill. Incremental: a run of D replaces exactly D's row.
{{ day_history() }}

with

orders as (

    select * from {{ ref('fct_orders') }}

),

diffs as (

    select * from {{ ref('fct_order_diffs') }}
    where as_of_date = {{ as_of_date() }}

),

state_history as (

    select * from {{ ref('fct_order_state_history') }}
    where as_of_date <= {{ as_of_date() }}

),

first_reconciled as (

    select
        order_id,
        min(as_of_date) as first_reconciled_date,
        min(ordered_at) as ordered_at
    from state_history
    where state = 'RECONCILED'
    group by order_id

),

latencies as (

    select
        order_id,
        first_reconciled_date,
        {{ to_double(dbt.datediff('ordered_at', dbt.dateadd('day', 1, 'cast(first_reconciled_date as timestamp)'), 'second')) }}
            / 3600 as latency_hours
    from first_reconciled
    where ordered_at is not null

),

latency_day as (

    select
        count(*) as orders_first_reconciled,
        percentile_cont(0.5) within group (order by latency_hours) as latency_p50_hours,
        percentile_cont(0.95) within group (order by latency_hours) as latency_p95_hours
    from latencies
    where first_reconciled_date = {{ as_of_date() }}

),

latency_30d as (

    select
        count(*) as orders_first_reconciled_30d,
        percentile_cont(0.5) within group (order by latency_hours) as latency_p50_hours_30d,
        percentile_cont(0.95) within group (order by latency_hours) as latency_p95_hours_30d
    from latencies
    where first_reconciled_date > {{ dbt.dateadd('day', -30, as_of_date()) }}

),

book as (

    select
        count(*) as orders_in_scope,
        sum(case when cast(ordered_at as date) = {{ as_of_date() }} then 1 else 0 end) as orders_placed,
        sum(case when state = 'RECONCILED' then 1 else 0 end) as orders_reconciled,
        sum(case when diff_count > 0 then 1 else 0 end) as orders_with_diffs,
        sum(case when state = 'ON_HOLD' then 1 else 0 end) as orders_on_hold
    from orders

),

diff_day as (

    select
        count(*) as diffs,
        sum(case when first_seen_date = {{ as_of_date() }} then 1 else 0 end) as diffs_opened
    from diffs

)

select
    {{ as_of_date() }} as as_of_date,
    cast(book.orders_in_scope as bigint) as orders_in_scope,
    cast(coalesce(book.orders_placed, 0) as bigint) as orders_placed,
    cast(coalesce(book.orders_reconciled, 0) as bigint) as orders_reconciled,
    cast(coalesce(book.orders_with_diffs, 0) as bigint) as orders_with_diffs,
    cast(coalesce(book.orders_on_hold, 0) as bigint) as orders_on_hold,
    cast(
        case when book.orders_in_scope > 0 then {{ to_double('book.orders_reconciled') }} / book.orders_in_scope end
        as {{ type_double() }}) as reconciled_rate,
    cast(coalesce(diff_day.diffs, 0) as bigint) as diffs,
    cast(coalesce(diff_day.diffs_opened, 0) as bigint) as diffs_opened,
    cast(latency_day.orders_first_reconciled as bigint) as orders_first_reconciled,
    cast(latency_day.latency_p50_hours as {{ type_double() }}) as latency_p50_hours,
    cast(latency_day.latency_p95_hours as {{ type_double() }}) as latency_p95_hours,
    cast(latency_30d.orders_first_reconciled_30d as bigint) as orders_first_reconciled_30d,
    cast(latency_30d.latency_p50_hours_30d as {{ type_double() }}) as latency_p50_hours_30d,
    cast(latency_30d.latency_p95_hours_30d as {{ type_double() }}) as latency_p95_hours_30d
from book
cross join diff_day
cross join latency_day
cross join latency_30d
