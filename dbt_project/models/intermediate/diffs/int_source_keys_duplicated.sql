-- Keys repeated in a source: a record key with more than one visible row (as of D) with the same
-- updated_at in one system and stream, rolled up per (order_id, system). Customers have no order and
-- are left out.
{{ config(materialized='table') }}

with

orders as (

    select * from {{ ref('int_orders_unioned') }}

),

payments as (

    select * from {{ ref('int_payments_unioned') }}

),

invoices as (

    select * from {{ ref('int_invoices_unioned') }}

),

fulfillments as (

    select * from {{ ref('int_fulfillments_unioned') }}

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

),

repeated_keys as (

    select
        role,
        source_system,
        source_stream,
        record_id,
        max(order_id) as order_id,
        count(*) as row_count
    from visible_rows
    where record_id is not null
    group by role, source_system, source_stream, record_id, updated_at
    having count(*) > 1

)

select
    order_id,
    source_system as system,
    role,
    count(*) as repeated_key_count,
    {{ dbt.listagg("record_id || ' x' || cast(row_count as varchar)", "', '", 'order by record_id') }} as repeated_keys
from repeated_keys
where order_id is not null
group by order_id, source_system, role
