-- One row per order_id seen in any system as of D: the order's current view and each role's per-order
-- aggregates (net sums converted to the order currency, flags the diff rules need), side by side.
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

customers as (

    select * from {{ ref('int_customers_current') }}

),

order_keys as (

    select order_id from orders
    union
    select order_id from payments where order_id is not null
    union
    select order_id from invoices where order_id is not null
    union
    select order_id from fulfillments where order_id is not null

),

-- payments -------------------------------------------------------------------------------------------

payments_converted as (

    select
        payments.order_id,
        payments.kind,
        payments.currency,
        payments.amount,
        payments.customer_id,
        payments.captured_at,
        payments.updated_at,
        orders.customer_id as order_customer_id,
        (payments.kind = 'charge' and payments.status = 'succeeded') as is_succeeded_charge,
        (payments.kind = 'refund' and payments.status = 'succeeded') as is_succeeded_refund,
        (payments.currency is not null and orders.currency is not null
            and payments.currency <> orders.currency) as is_foreign,
        {{ fx_rate_is_missing('payments.currency', 'orders.currency') }} as is_rate_missing,
        {{ convert_amount('payments.amount', 'payments.currency', 'orders.currency') }} as converted_amount,
        -- the amount-on-the-charge refund shape: the charge's refunded total (its current version)
        coalesce(payments.refunded_amount, 0) > 0 as has_refund_on_charge,
        {{ convert_amount('coalesce(payments.refunded_amount, 0)', 'payments.currency', 'orders.currency') }}
            as converted_refunded_on_charge
    from payments
    left join orders
        on payments.order_id = orders.order_id
    where payments.order_id is not null

),

payments_aggregated as (

    select
        order_id,
        sum(case when is_succeeded_charge then 1 else 0 end) as charge_count,
        coalesce(sum(case when is_succeeded_charge then converted_amount end), 0) as captured_amount,
        -- refunds in every shape: records of their own (nested ones are staged as such), and the
        -- refunded totals that succeeded charges report (docs/reconciliation-rules.md, three shapes)
        coalesce(sum(case when is_succeeded_refund then converted_amount end), 0)
            + coalesce(sum(case when is_succeeded_charge then converted_refunded_on_charge end), 0) as refunded_amount,
        min(case when is_succeeded_charge then captured_at end) as first_captured_at,
        max(case
            when is_succeeded_refund then captured_at
            when is_succeeded_charge and has_refund_on_charge then updated_at
        end) as last_refunded_at,
        max(case when is_succeeded_charge and is_foreign then 1 else 0 end) = 1 as has_foreign_charge,
        max(case when is_succeeded_charge and is_rate_missing then 1 else 0 end) = 1 as is_charge_rate_missing,
        max(case when (is_succeeded_charge or is_succeeded_refund) and is_foreign then 1 else 0 end) = 1
            as has_converted_payment
    from payments_converted
    group by order_id

),

charge_currencies as (

    select
        order_id,
        {{ dbt.listagg('currency', "'+'", 'order by currency') }} as foreign_charge_currencies
    from (
        select distinct order_id, currency
        from payments_converted
        where is_succeeded_charge and is_foreign
    ) as foreign_charges
    group by order_id

),

charge_duplicates as (

    select distinct order_id
    from payments_converted
    where is_succeeded_charge
    group by order_id, currency, amount
    having count(*) >= 2

),

payment_customers as (

    select
        order_id,
        {{ dbt.listagg('customer_id', "', '", 'order by customer_id') }} as conflicting_payment_customer_ids
    from (
        select distinct order_id, customer_id
        from payments_converted
        where is_succeeded_charge
            and customer_id is not null
            and order_customer_id is not null
            and customer_id <> order_customer_id
    ) as conflicts
    group by order_id

),

-- invoices -------------------------------------------------------------------------------------------

invoices_converted as (

    select
        invoices.order_id,
        invoices.kind,
        invoices.currency,
        invoices.amount,
        invoices.customer_id,
        orders.customer_id as order_customer_id,
        (invoices.status = 'posted') as is_posted,
        -- the amount-on-the-invoice credit shape: the invoice's credited total (its current version)
        {{ convert_amount('coalesce(invoices.credited_amount, 0)', 'invoices.currency', 'orders.currency') }}
            as converted_credited_on_invoice,
        (invoices.kind = 'invoice' and invoices.status = 'posted') as is_posted_invoice,
        (invoices.kind = 'credit_note' and invoices.status = 'posted') as is_posted_credit_note,
        (invoices.currency is not null and orders.currency is not null
            and invoices.currency <> orders.currency) as is_foreign,
        {{ fx_rate_is_missing('invoices.currency', 'orders.currency') }} as is_rate_missing,
        {{ convert_amount('invoices.amount', 'invoices.currency', 'orders.currency') }} as converted_amount
    from invoices
    left join orders
        on invoices.order_id = orders.order_id
    where invoices.order_id is not null

),

invoices_aggregated as (

    select
        order_id,
        sum(case when is_posted_invoice then 1 else 0 end) as invoice_count,
        coalesce(sum(case when is_posted_invoice then converted_amount end), 0) as invoiced_amount,
        coalesce(sum(case when is_posted_credit_note then converted_amount end), 0)
            + coalesce(sum(case when is_posted_invoice then converted_credited_on_invoice end), 0) as credited_amount,
        max(case when is_posted_invoice and is_foreign then 1 else 0 end) = 1 as has_foreign_invoice,
        max(case when is_posted_invoice and is_rate_missing then 1 else 0 end) = 1 as is_invoice_rate_missing
    from invoices_converted
    group by order_id

),

invoice_currencies as (

    select
        order_id,
        {{ dbt.listagg('currency', "'+'", 'order by currency') }} as foreign_invoice_currencies
    from (
        select distinct order_id, currency
        from invoices_converted
        where is_posted_invoice and is_foreign
    ) as foreign_invoices
    group by order_id

),

invoice_duplicates as (

    select distinct order_id
    from invoices_converted
    where is_posted_invoice
    group by order_id, currency, amount
    having count(*) >= 2

),

invoice_customers as (

    select
        order_id,
        {{ dbt.listagg('customer_id', "', '", 'order by customer_id') }} as conflicting_invoice_customer_ids
    from (
        select distinct order_id, customer_id
        from invoices_converted
        where is_posted
            and customer_id is not null
            and order_customer_id is not null
            and customer_id <> order_customer_id
    ) as conflicts
    group by order_id

),

-- fulfillments ---------------------------------------------------------------------------------------

fulfillments_aggregated as (

    select
        order_id,
        count(*) as fulfillment_count,
        coalesce(sum(line_count), 0) as fulfilled_lines,
        min(fulfilled_at) as first_fulfilled_at
    from fulfillments
    where order_id is not null
        and status in ('shipped', 'delivered', 'activated')
    group by order_id

),

joined as (

    select
        order_keys.order_id,

        -- order (current view)
        orders.order_id is not null as has_order_record,
        orders.source_system as order_system,
        orders.customer_id,
        orders.status as order_status,
        orders.currency,
        orders.total_amount,
        orders.line_count,
        orders.ordered_at,
        orders.updated_at as order_updated_at,
        orders.cancelled_at,
        (orders.order_id is not null and coalesce(orders.status, '') <> 'cancelled') as is_live,
        coalesce(orders.status = 'cancelled', false) as is_cancelled,

        -- payments
        cast(coalesce(payments_aggregated.charge_count, 0) as bigint) as charge_count,
        cast(coalesce(payments_aggregated.captured_amount, 0) as decimal(20,4)) as captured_amount,
        cast(coalesce(payments_aggregated.refunded_amount, 0) as decimal(20,4)) as refunded_amount,
        cast(coalesce(payments_aggregated.captured_amount, 0) - coalesce(payments_aggregated.refunded_amount, 0)
            as decimal(20,4)) as net_paid_amount,
        coalesce(payments_aggregated.charge_count, 0) > 0 as is_paid,
        payments_aggregated.first_captured_at,
        payments_aggregated.last_refunded_at,
        coalesce(payments_aggregated.has_foreign_charge, false) as has_foreign_charge,
        coalesce(payments_aggregated.is_charge_rate_missing, false) as is_charge_rate_missing,
        coalesce(payments_aggregated.has_converted_payment, false) as has_converted_payment,
        charge_currencies.foreign_charge_currencies,
        charge_duplicates.order_id is not null as has_duplicate_charges,
        payment_customers.conflicting_payment_customer_ids,

        -- invoices
        cast(coalesce(invoices_aggregated.invoice_count, 0) as bigint) as invoice_count,
        cast(coalesce(invoices_aggregated.invoiced_amount, 0) as decimal(20,4)) as invoiced_amount,
        cast(coalesce(invoices_aggregated.credited_amount, 0) as decimal(20,4)) as credited_amount,
        coalesce(invoices_aggregated.invoice_count, 0) > 0 as is_invoiced,
        coalesce(invoices_aggregated.has_foreign_invoice, false) as has_foreign_invoice,
        coalesce(invoices_aggregated.is_invoice_rate_missing, false) as is_invoice_rate_missing,
        invoice_currencies.foreign_invoice_currencies,
        invoice_duplicates.order_id is not null as has_duplicate_invoices,
        invoice_customers.conflicting_invoice_customer_ids,

        -- fulfillments
        cast(coalesce(fulfillments_aggregated.fulfillment_count, 0) as bigint) as fulfillment_count,
        cast(coalesce(fulfillments_aggregated.fulfilled_lines, 0) as bigint) as fulfilled_lines,
        coalesce(fulfillments_aggregated.fulfillment_count, 0) > 0 as is_fulfilled,
        fulfillments_aggregated.first_fulfilled_at,

        -- customer (enrichment)
        customers.customer_id is not null as has_customer_record,
        customers.segment as customer_segment,
        customers.plan as customer_plan,
        customers.account_owner as customer_account_owner,
        (customers.customer_id is not null and customers.segment is not null and customers.plan is not null)
            as is_enriched

    from order_keys
    left join orders
        on order_keys.order_id = orders.order_id
    left join payments_aggregated
        on order_keys.order_id = payments_aggregated.order_id
    left join charge_currencies
        on order_keys.order_id = charge_currencies.order_id
    left join charge_duplicates
        on order_keys.order_id = charge_duplicates.order_id
    left join payment_customers
        on order_keys.order_id = payment_customers.order_id
    left join invoices_aggregated
        on order_keys.order_id = invoices_aggregated.order_id
    left join invoice_currencies
        on order_keys.order_id = invoice_currencies.order_id
    left join invoice_duplicates
        on order_keys.order_id = invoice_duplicates.order_id
    left join invoice_customers
        on order_keys.order_id = invoice_customers.order_id
    left join fulfillments_aggregated
        on order_keys.order_id = fulfillments_aggregated.order_id
    left join customers
        on orders.customer_id = customers.customer_id

)

select * from joined
