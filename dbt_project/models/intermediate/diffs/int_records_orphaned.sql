-- Payment, invoice and fulfillment records (current views as of D) whose non-null order_id no visible
-- order has, one row per (order_id, system). Empty when the orders role is not configured.
-- A table: its primary-key test and int_order_diffs_candidates both read it (as a view, each would
-- compute it again).
{{ config(materialized='table') }}

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

records as (

    select order_id, source_system, 'payments' as role, payment_id as record_id, amount, currency, updated_at
    from payments
    where order_id is not null

    union all

    select order_id, source_system, 'invoices' as role, invoice_id as record_id, amount, currency, updated_at
    from invoices
    where order_id is not null

    union all

    select
        order_id, source_system, 'fulfillments' as role, fulfillment_id as record_id,
        cast(0 as decimal(20,4)) as amount, cast(null as {{ type_text() }}) as currency, updated_at
    from fulfillments
    where order_id is not null

),

orphans as (

    select records.*
    from records
    left join orders
        on records.order_id = orders.order_id
    where orders.order_id is null
        and {{ 'true' if role_is_configured('orders') else 'false' }}

)

select
    order_id,
    source_system as system,
    role,
    count(*) as record_count,
    {{ dbt.listagg('record_id', "', '", 'order by record_id') }} as record_ids,
    cast(sum(coalesce(amount, 0)) as decimal(20,4)) as amount,
    case when count(distinct currency) = 1 then min(currency) end as currency,
    min(updated_at) as first_updated_at
from orphans
group by order_id, source_system, role
