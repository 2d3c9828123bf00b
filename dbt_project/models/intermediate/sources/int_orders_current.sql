-- The current view as of D of each order (across the systems of the orders role), with the moment it
-- was first seen cancelled among its visible versions.
-- The record-version model: macros/current_versions.sql.
{{ config(materialized='table') }}

with

orders as (

    select * from {{ ref('int_orders_unioned') }}

),

cancellations as (

    select
        order_id,
        min(updated_at) as cancelled_at
    from (
        {{ visible_versions('orders', ['order_id']) | indent(8) }}
    ) as visible_orders
    where status = 'cancelled'
    group by order_id

),

current_orders as (

    {{ current_versions('orders', 'order_id', ['order_id']) }}

)

select
    current_orders.order_id,
    current_orders.source_system,
    current_orders.source_stream,
    current_orders._airbyte_raw_id,
    current_orders.customer_id,
    current_orders.status,
    current_orders.currency,
    current_orders.total_amount,
    current_orders.line_count,
    current_orders.ordered_at,
    current_orders.updated_at,
    current_orders.available_at,
    current_orders.delivery_id,
    current_orders.delivered_at,
    current_orders.delivery_repeat_count,
    cancellations.cancelled_at
from current_orders
left join cancellations
    on current_orders.order_id = cancellations.order_id
