-- Repeated source keys as of D, one row per record: a record key with more than one visible row with
-- the same updated_at in one system and stream (role, source_system, source_stream, record_id,
-- updated_at), with the order it points at and how many rows repeat it. Customers have no order and
-- are left out. Incremental (macros/incremental_state.sql): a build recomputes only changed records.
{%- set plan = incremental_consumer("changed_repeated_keys_predicate(incremental_plan())") %}

with

orders as (

    select * from {{ ref('int_orders_unioned') }}
    where {{ changed_keys_predicate('orders', plan) }}

),

payments as (

    select * from {{ ref('int_payments_unioned') }}
    where {{ changed_keys_predicate('payments', plan) }}

),

invoices as (

    select * from {{ ref('int_invoices_unioned') }}
    where {{ changed_keys_predicate('invoices', plan) }}

),

fulfillments as (

    select * from {{ ref('int_fulfillments_unioned') }}
    where {{ changed_keys_predicate('fulfillments', plan) }}

),

visible_rows as (

    select 'orders' as role, source_system, source_stream, order_id as record_id, order_id, updated_at
    from orders
    where {{ is_visible_as_of() }}

    union all

    select 'payments' as role, source_system, source_stream, payment_id as record_id, order_id, updated_at
    from payments
    where {{ is_visible_as_of() }}

    union all

    select 'invoices' as role, source_system, source_stream, invoice_id as record_id, order_id, updated_at
    from invoices
    where {{ is_visible_as_of() }}

    union all

    select 'fulfillments' as role, source_system, source_stream, fulfillment_id as record_id, order_id, updated_at
    from fulfillments
    where {{ is_visible_as_of() }}

)

select
    role,
    source_system,
    source_stream,
    record_id,
    updated_at,
    max(order_id) as order_id,
    count(*) as row_count
from visible_rows
where record_id is not null
group by role, source_system, source_stream, record_id, updated_at
having count(*) > 1
