-- The canonical order as of D without the day (marts.fct_orders adds it): one row per order_id seen in
-- any system, every role's view side by side, the derived state (first matching rule of
-- docs/reconciliation-rules.md), why it is on hold, and who owns it.
{{ config(materialized='table') }}

{%- set tol = tolerance('total_amount', 'line_count') %}

with

orders as (

    select
        *,
        is_paid and refunded_amount > 0 and refunded_amount >= captured_amount - {{ tol }} as is_fully_refunded
    from {{ ref('int_orders_aggregated') }}

),

diffs as (

    select * from {{ ref('int_order_diffs_classified') }}

),

freshness as (

    select * from {{ ref('int_system_freshness') }}

),

held_by as (

    select distinct diffs.order_id, freshness.system
    from diffs
    inner join freshness
        on freshness.is_stale
        and diffs.roles_involved like '%,' || freshness.role || ',%'
    where diffs.is_suppressed

),

holds as (

    select
        order_id,
        'stale source: ' || {{ dbt.listagg('system', "', '", 'order by system') }} as stale_reason
    from held_by
    group by order_id

),

diff_counts as (

    select
        order_id,
        sum(case when is_suppressed then 0 else 1 end) as diff_count,
        sum(case when is_suppressed then 1 else 0 end) as suppressed_diff_count
    from diffs
    group by order_id

),

stated as (

    select
        orders.*,
        cast(coalesce(diff_counts.diff_count, 0) as bigint) as diff_count,
        cast(coalesce(diff_counts.suppressed_diff_count, 0) as bigint) as suppressed_diff_count,
        case
            when not orders.has_order_record then 'ON_HOLD'
            when orders.is_cancelled then 'CANCELLED'
            when orders.is_fully_refunded then 'REFUNDED'
            when holds.order_id is not null then 'ON_HOLD'
            {#- The ladder has a step per configured role only: an order that passed every configured
                step but still has a diff stays in the state of the last configured step, so a state
                never names a role that is not configured (no FULFILLED without a fulfillment system). #}
            {%- set reached = 'VALIDATED' %}
            {%- if role_is_configured('customers') %}
            when not orders.is_enriched then 'RECEIVED'
            {%- endif %}
            {%- if role_is_configured('payments') %}
            when not orders.is_paid then {{ recon_literal(reached) }}
            {%- set reached = 'PAID' %}
            {%- endif %}
            {%- if role_is_configured('invoices') %}
            when not orders.is_invoiced then {{ recon_literal(reached) }}
            {%- set reached = 'INVOICED' %}
            {%- endif %}
            {%- if role_is_configured('fulfillments') %}
            when not orders.is_fulfilled then {{ recon_literal(reached) }}
            {%- set reached = 'FULFILLED' %}
            {%- endif %}
            when coalesce(diff_counts.diff_count, 0) > 0 then {{ recon_literal(reached) }}
            else 'RECONCILED'
        end as state,
        case
            when not orders.has_order_record then 'no order record'
            when orders.is_cancelled then null
            when orders.is_fully_refunded then null
            else holds.stale_reason
        end as hold_reason
    from orders
    left join holds
        on orders.order_id = holds.order_id
    left join diff_counts
        on orders.order_id = diff_counts.order_id

)

select
    order_id,
    customer_id,
    state,
    hold_reason,
    {{ state_owner('state') }} as state_owner,
    diff_count,
    suppressed_diff_count,

    -- order (orders role)
    has_order_record,
    order_system,
    order_status,
    currency,
    total_amount,
    line_count,
    ordered_at,
    order_updated_at,
    cancelled_at,

    -- payments role, net, in the order currency
    charge_count,
    captured_amount,
    refunded_amount,
    net_paid_amount,
    is_paid,
    first_captured_at,
    last_refunded_at,

    -- invoices role, in the order currency
    invoice_count,
    invoiced_amount,
    credited_amount,
    cast(invoiced_amount - credited_amount as decimal(20,4)) as net_invoiced_amount,
    is_invoiced,

    -- fulfillments role
    fulfillment_count,
    fulfilled_lines,
    is_fulfilled,
    first_fulfilled_at,

    -- customers role
    has_customer_record,
    customer_segment,
    customer_plan,
    customer_account_owner
from stated
