-- Keys repeated inside one delivery as of D, one row per record: the current version of a record key
-- (role, source_system, source_stream, record_id) appears more than once, with the same updated_at, in
-- the delivery it came in (one file or one sync). A version re-sent in another delivery (a snapshot
-- sent again, a file delivered twice, a corrected re-export) is not a repeat: it is the same version.
-- Customers have no order and are left out.

with

orders as (

    select * from {{ ref('int_orders_current') }}

),

payments as (

    select * from {{ ref('int_payments_current') }}

),

invoices as (

    select * from {{ ref('int_invoices_current') }}

),

fulfillments as (

    select * from {{ ref('int_fulfillments_current') }}

),

current_records as (

    select 'orders' as role, source_system, source_stream, order_id as record_id, order_id, updated_at,
        delivery_repeat_count
    from orders

    union all

    select 'payments' as role, source_system, source_stream, payment_id as record_id, order_id, updated_at,
        delivery_repeat_count
    from payments

    union all

    select 'invoices' as role, source_system, source_stream, invoice_id as record_id, order_id, updated_at,
        delivery_repeat_count
    from invoices

    union all

    select 'fulfillments' as role, source_system, source_stream, fulfillment_id as record_id, order_id, updated_at,
        delivery_repeat_count
    from fulfillments

)

select
    role,
    source_system,
    source_stream,
    record_id,
    updated_at,
    order_id,
    delivery_repeat_count as row_count
from current_records
where delivery_repeat_count > 1
