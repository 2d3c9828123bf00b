-- Exception rates: one row per (as_of_date, diff_type, system) with a diff on D: the diffs present, the ones
-- first seen on D (= exceptions opened, whose identity is order x diff type x system), the orders they
-- touch, and the day's denominators. exception_rate = opened / orders placed that day; open_rate = orders
-- with such a diff / orders in scope. Rates over a window are sum(opened) / sum(orders_placed) of its days.
-- Incremental: a run of D replaces exactly D's rows.
{{ day_history() }}

with

diffs as (

    select * from {{ ref('fct_order_diffs') }}
    where as_of_date = {{ as_of_date() }}

),

orders as (

    select * from {{ ref('fct_orders') }}

),

book as (

    select
        count(*) as orders_in_scope,
        sum(case when cast(ordered_at as date) = {{ as_of_date() }} then 1 else 0 end) as orders_placed
    from orders

),

by_type as (

    select
        diff_type,
        system,
        count(*) as open_diffs,
        sum(case when first_seen_date = {{ as_of_date() }} then 1 else 0 end) as opened,
        count(distinct order_id) as orders_affected
    from diffs
    group by diff_type, system

)

select
    {{ as_of_date() }} as as_of_date,
    by_type.diff_type,
    by_type.system,
    cast(by_type.open_diffs as bigint) as open_diffs,
    cast(by_type.opened as bigint) as opened,
    cast(by_type.orders_affected as bigint) as orders_affected,
    cast(book.orders_in_scope as bigint) as orders_in_scope,
    cast(coalesce(book.orders_placed, 0) as bigint) as orders_placed,
    cast(case when book.orders_placed > 0 then {{ to_double('by_type.opened') }} / book.orders_placed end as {{ type_double() }})
        as exception_rate,
    cast(case when book.orders_in_scope > 0 then {{ to_double('by_type.orders_affected') }} / book.orders_in_scope end as {{ type_double() }})
        as open_rate
from by_type
cross join book
