{{ config(meta={'dagster': {'ref': {'name': 'fct_order_diffs'}}}) }}
-- Every order with a diff as of D is a canonical order of D, and an order with a diff is never RECONCILED.
with

diffs as (

    select * from {{ ref('fct_order_diffs') }}
    where as_of_date = {{ as_of_date() }}

),

orders as (

    select * from {{ ref('fct_orders') }}

)

select diffs.order_id, diffs.diff_type, orders.state
from diffs
left join orders
    on diffs.order_id = orders.order_id
where orders.order_id is null
    or orders.state = 'RECONCILED'
