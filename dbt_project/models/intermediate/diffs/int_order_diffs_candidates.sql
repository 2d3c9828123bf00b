-- Every diff of the catalogue (docs/reconciliation-rules.md) that fires as of D once its grace window
-- has passed, before staleness suppression: one row per (order_id, diff_type, system). A rule whose
-- roles are not all configured is off. `roles_involved` (',orders,payments,') drives suppression.

{%- set tol = tolerance('total_amount', 'line_count') %}
{%- set fx_tol = tolerance('total_amount', 'line_count', fx=true) %}
{%- set has = {} %}
{%- for role in recon_config().roles %}
    {%- do has.update({role: role_is_configured(role)}) %}
{%- endfor %}
{%- set grace = recon_config().rules.get('grace_hours') or {} %}
{%- set rules = [] %}

with

orders as (

    select * from {{ ref('int_orders_aggregated') }}

),

orphans as (

    select * from {{ ref('int_records_orphaned') }}

),

repeated_keys as (

    select * from {{ ref('int_source_keys_duplicated') }}

),

conditions as (

    select
        *,
        (has_duplicate_charges and captured_amount > total_amount + {{ tol }}) as is_charge_duplicate,
        (has_foreign_charge and (is_charge_rate_missing or abs(captured_amount - total_amount) > {{ fx_tol }}))
            as is_charge_currency_mismatch,
        (has_duplicate_invoices and invoiced_amount > total_amount + {{ tol }}) as is_invoice_duplicate,
        (has_foreign_invoice and (is_invoice_rate_missing or abs(invoiced_amount - total_amount) > {{ fx_tol }}))
            as is_invoice_currency_mismatch
    from orders

),

{%- if has.orders and has.payments %}
{%- do rules.append('missing_payment') %}

missing_payment as (

    select
        order_id, customer_id, 'missing_payment' as diff_type, {{ recon_literal(role_system_label('payments')) }} as system,
        'payments' as role, ',orders,payments,' as roles_involved, {{ recon_literal(systems_involved(['orders', 'payments'])) }} as systems_involved,
        cast(total_amount as {{ type_text() }}) as expected_value, 'no succeeded charge' as actual_value,
        total_amount as amount_at_risk, currency,
        'missing_payment: live order, no succeeded charge and not fulfilled, {{ grace.get("missing_payment", 0) }}h after ordered_at' as rule,
        ordered_at as anchor_at
    from conditions
    where is_live and not is_paid and not is_fulfilled
        and {{ grace_passed('missing_payment', 'ordered_at') }}

),
{%- endif %}

{%- if has.payments and has.invoices %}
{%- do rules.append('missing_invoice') %}

missing_invoice as (

    select
        order_id, customer_id, 'missing_invoice' as diff_type, {{ recon_literal(role_system_label('invoices')) }} as system,
        'invoices' as role, ',payments,invoices,' as roles_involved, {{ recon_literal(systems_involved(['payments', 'invoices'])) }} as systems_involved,
        cast(net_paid_amount as {{ type_text() }}) as expected_value, 'no posted invoice' as actual_value,
        net_paid_amount as amount_at_risk, currency,
        'missing_invoice: paid order (net paid above tolerance) without a posted invoice, {{ grace.get("missing_invoice", 0) }}h after first capture' as rule,
        first_captured_at as anchor_at
    from conditions
    where is_live and is_paid and net_paid_amount > {{ tol }} and not is_invoiced
        and {{ grace_passed('missing_invoice', 'first_captured_at') }}

),
{%- endif %}

{%- if has.payments and has.fulfillments %}
{%- do rules.append('missing_fulfillment') %}

missing_fulfillment as (

    select
        order_id, customer_id, 'missing_fulfillment' as diff_type, {{ recon_literal(role_system_label('fulfillments')) }} as system,
        'fulfillments' as role, ',payments,fulfillments,' as roles_involved, {{ recon_literal(systems_involved(['payments', 'fulfillments'])) }} as systems_involved,
        cast(coalesce(line_count, 0) as {{ type_text() }}) || ' line(s) shipped/delivered/activated' as expected_value,
        'not fulfilled' as actual_value,
        net_paid_amount as amount_at_risk, currency,
        'missing_fulfillment: paid order (net paid above tolerance) not fulfilled, {{ grace.get("missing_fulfillment", 0) }}h after first capture' as rule,
        first_captured_at as anchor_at
    from conditions
    where is_live and is_paid and net_paid_amount > {{ tol }} and not is_fulfilled
        and {{ grace_passed('missing_fulfillment', 'first_captured_at') }}

),
{%- endif %}

{%- if has.orders and has.payments and has.fulfillments %}
{%- do rules.append('unpaid_fulfillment') %}

unpaid_fulfillment as (

    select
        order_id, customer_id, 'unpaid_fulfillment' as diff_type, {{ recon_literal(role_system_label('fulfillments')) }} as system,
        'fulfillments' as role, ',orders,payments,fulfillments,' as roles_involved, {{ recon_literal(systems_involved(['orders', 'payments', 'fulfillments'])) }} as systems_involved,
        cast(total_amount as {{ type_text() }}) as expected_value, 'fulfilled, no succeeded charge' as actual_value,
        total_amount as amount_at_risk, currency,
        'unpaid_fulfillment: fulfilled live order never paid, {{ grace.get("unpaid_fulfillment", 0) }}h after first fulfillment' as rule,
        first_fulfilled_at as anchor_at
    from conditions
    where is_live and is_fulfilled and not is_paid
        and {{ grace_passed('unpaid_fulfillment', 'first_fulfilled_at') }}

),
{%- endif %}

{%- for role, amount, flag, is_dup, is_ccy, is_foreign in [
        ('payments', 'captured_amount', 'is_paid', 'is_charge_duplicate', 'is_charge_currency_mismatch', 'has_foreign_charge'),
        ('invoices', 'invoiced_amount', 'is_invoiced', 'is_invoice_duplicate', 'is_invoice_currency_mismatch', 'has_foreign_invoice')] %}
{%- if has.orders and has[role] %}
{%- do rules.append('amount_mismatch_' ~ role) %}
{%- do rules.append('currency_mismatch_' ~ role) %}
{%- do rules.append('duplicate_record_' ~ role) %}
{%- do rules.append('customer_mismatch_' ~ role) %}

amount_mismatch_{{ role }} as (

    select
        order_id, customer_id, 'amount_mismatch' as diff_type, {{ recon_literal(role_system_label(role)) }} as system,
        '{{ role }}' as role, ',orders,{{ role }},' as roles_involved, {{ recon_literal(systems_involved(['orders', role])) }} as systems_involved,
        cast(total_amount as {{ type_text() }}) as expected_value, cast({{ amount }} as {{ type_text() }}) as actual_value,
        abs({{ amount }} - total_amount) as amount_at_risk, currency,
        'amount_mismatch: {{ amount }} differs from the order total beyond tolerance' as rule,
        ordered_at as anchor_at
    from conditions
    where is_live and {{ flag }} and not {{ is_dup }} and not {{ is_ccy }}
        and abs({{ amount }} - total_amount) > case when {{ is_foreign }} then {{ fx_tol }} else {{ tol }} end
        and {{ grace_passed('amount_mismatch', 'ordered_at') }}

),

currency_mismatch_{{ role }} as (

    select
        order_id, customer_id, 'currency_mismatch' as diff_type, {{ recon_literal(role_system_label(role)) }} as system,
        '{{ role }}' as role, ',orders,{{ role }},' as roles_involved, {{ recon_literal(systems_involved(['orders', role])) }} as systems_involved,
        currency as expected_value,
        {{ 'foreign_charge_currencies' if role == 'payments' else 'foreign_invoice_currencies' }} as actual_value,
        case when {{ 'is_charge_rate_missing' if role == 'payments' else 'is_invoice_rate_missing' }} then total_amount
             else abs({{ amount }} - total_amount) end as amount_at_risk,
        currency,
        'currency_mismatch: {{ role }} in another currency, rate missing or converted sum outside the FX tolerance' as rule,
        ordered_at as anchor_at
    from conditions
    where is_live and {{ is_ccy }}
        and {{ grace_passed('currency_mismatch', 'ordered_at') }}

),

duplicate_record_{{ role }} as (

    select
        order_id, customer_id, 'duplicate_record' as diff_type, {{ recon_literal(role_system_label(role)) }} as system,
        '{{ role }}' as role, ',orders,{{ role }},' as roles_involved, {{ recon_literal(systems_involved(['orders', role])) }} as systems_involved,
        cast(total_amount as {{ type_text() }}) as expected_value, cast({{ amount }} as {{ type_text() }}) as actual_value,
        {{ amount }} - total_amount as amount_at_risk, currency,
        'duplicate_record: two or more {{ "succeeded charges" if role == "payments" else "posted invoices" }} with equal currency and amount, sum above total + tolerance' as rule,
        cast(null as timestamp) as anchor_at
    from conditions
    where {{ is_dup }}

),

customer_mismatch_{{ role }} as (

    select
        order_id, customer_id, 'customer_mismatch' as diff_type, {{ recon_literal(role_system_label(role)) }} as system,
        '{{ role }}' as role, ',orders,{{ role }},' as roles_involved, {{ recon_literal(systems_involved(['orders', role])) }} as systems_involved,
        customer_id as expected_value,
        {{ 'conflicting_payment_customer_ids' if role == 'payments' else 'conflicting_invoice_customer_ids' }} as actual_value,
        cast(0 as decimal(20,4)) as amount_at_risk, currency,
        'customer_mismatch: a {{ "succeeded charge" if role == "payments" else "posted document" }} names another customer than the order' as rule,
        cast(null as timestamp) as anchor_at
    from conditions
    where {{ 'conflicting_payment_customer_ids' if role == 'payments' else 'conflicting_invoice_customer_ids' }} is not null

),
{%- endif %}
{%- endfor %}

{%- if has.orders and has.fulfillments %}
{%- do rules.append('duplicate_record_fulfillments') %}
{%- do rules.append('status_conflict_fulfillments') %}

duplicate_record_fulfillments as (

    select
        order_id, customer_id, 'duplicate_record' as diff_type, {{ recon_literal(role_system_label('fulfillments')) }} as system,
        'fulfillments' as role, ',orders,fulfillments,' as roles_involved, {{ recon_literal(systems_involved(['orders', 'fulfillments'])) }} as systems_involved,
        cast(line_count as {{ type_text() }}) || ' line(s)' as expected_value,
        cast(fulfilled_lines as {{ type_text() }}) || ' line(s) in ' || cast(fulfillment_count as {{ type_text() }}) || ' fulfillments' as actual_value,
        cast(0 as decimal(20,4)) as amount_at_risk, currency,
        'duplicate_record: two or more active fulfillments covering more lines than the order has' as rule,
        cast(null as timestamp) as anchor_at
    from conditions
    where fulfillment_count >= 2 and fulfilled_lines > line_count

),

status_conflict_fulfillments as (

    select
        order_id, customer_id, 'status_conflict' as diff_type, {{ recon_literal(role_system_label('fulfillments')) }} as system,
        'fulfillments' as role, ',orders,fulfillments,' as roles_involved, {{ recon_literal(systems_involved(['orders', 'fulfillments'])) }} as systems_involved,
        'not fulfilled (order cancelled)' as expected_value, 'fulfilled' as actual_value,
        total_amount as amount_at_risk, currency,
        'status_conflict: cancelled order with an active fulfillment, {{ grace.get("status_conflict", 0) }}h after cancellation' as rule,
        cancelled_at as anchor_at
    from conditions
    where is_cancelled and is_fulfilled
        and {{ grace_passed('status_conflict', 'cancelled_at') }}

),
{%- endif %}

{%- if has.orders and has.payments %}
{%- do rules.append('status_conflict_payments') %}

status_conflict_payments as (

    select
        order_id, customer_id, 'status_conflict' as diff_type, {{ recon_literal(role_system_label('payments')) }} as system,
        'payments' as role, ',orders,payments,' as roles_involved, {{ recon_literal(systems_involved(['orders', 'payments'])) }} as systems_involved,
        '0 net paid (order cancelled)' as expected_value, cast(net_paid_amount as {{ type_text() }}) as actual_value,
        net_paid_amount as amount_at_risk, currency,
        'status_conflict: cancelled order with captured, unrefunded payments, {{ grace.get("status_conflict", 0) }}h after cancellation' as rule,
        cancelled_at as anchor_at
    from conditions
    where is_cancelled and net_paid_amount > {{ tol }}
        and {{ grace_passed('status_conflict', 'cancelled_at') }}

),
{%- endif %}

{%- if has.payments and has.invoices %}
{%- do rules.append('status_conflict_invoices') %}

status_conflict_invoices as (

    select
        order_id, customer_id, 'status_conflict' as diff_type, {{ recon_literal(role_system_label('invoices')) }} as system,
        'invoices' as role, ',payments,invoices,' as roles_involved, {{ recon_literal(systems_involved(['payments', 'invoices'])) }} as systems_involved,
        cast(refunded_amount as {{ type_text() }}) as expected_value, cast(credited_amount as {{ type_text() }}) as actual_value,
        refunded_amount - credited_amount as amount_at_risk, currency,
        'status_conflict: refunds not matched by posted credit notes, {{ grace.get("status_conflict", 0) }}h after the last refund' as rule,
        last_refunded_at as anchor_at
    from conditions
    where refunded_amount > credited_amount + {{ tol }}
        and {{ grace_passed('status_conflict', 'last_refunded_at') }}

),
{%- endif %}

{%- if has.orders and has.customers %}
{%- do rules.append('missing_enrichment') %}

missing_enrichment as (

    select
        order_id, customer_id, 'missing_enrichment' as diff_type, {{ recon_literal(role_system_label('customers')) }} as system,
        'customers' as role, ',orders,customers,' as roles_involved, {{ recon_literal(systems_involved(['orders', 'customers'])) }} as systems_involved,
        'customer with segment and plan' as expected_value,
        case when not has_customer_record then 'customer absent'
             when customer_segment is null and customer_plan is null then 'segment and plan missing'
             when customer_segment is null then 'segment missing'
             else 'plan missing' end as actual_value,
        cast(0 as decimal(20,4)) as amount_at_risk, currency,
        'missing_enrichment: customer absent from the CRM or lacking segment/plan, {{ grace.get("missing_enrichment", 0) }}h after ordered_at' as rule,
        ordered_at as anchor_at
    from conditions
    where is_live and customer_id is not null and not is_enriched
        and {{ grace_passed('missing_enrichment', 'ordered_at') }}

),
{%- endif %}

{%- if has.orders %}
{%- do rules.append('orphan_record') %}

orphan_record as (

    select
        orphans.order_id, cast(null as {{ type_text() }}) as customer_id, 'orphan_record' as diff_type, orphans.system,
        orphans.role, ',orders,' || orphans.role || ',' as roles_involved,
        {{ recon_literal(systems_involved(['orders'])) }} || ', ' || orphans.system as systems_involved,
        'an order ' || orphans.order_id || ' in the orders system' as expected_value,
        'no such order; records ' || orphans.record_ids as actual_value,
        orphans.amount as amount_at_risk, orphans.currency,
        'orphan_record: records pointing at an order the orders system lacks, {{ grace.get("orphan_record", 0) }}h after their first update' as rule,
        orphans.first_updated_at as anchor_at
    from orphans
    where {{ grace_passed('orphan_record', 'first_updated_at', 'orphans') }}

),
{%- endif %}
{%- do rules.append('duplicate_record_keys') %}

duplicate_record_keys as (

    select
        repeated_keys.order_id, orders.customer_id, 'duplicate_record' as diff_type, repeated_keys.system,
        repeated_keys.role, ',' || repeated_keys.role || ',' as roles_involved, repeated_keys.system as systems_involved,
        'one row per key and updated_at in a delivery' as expected_value,
        'repeated keys: ' || repeated_keys.repeated_keys as actual_value,
        cast(0 as decimal(20,4)) as amount_at_risk, orders.currency,
        'duplicate_record: a source key is repeated with the same updated_at inside the delivery of its current version' as rule,
        cast(null as timestamp) as anchor_at
    from repeated_keys
    left join orders
        on repeated_keys.order_id = orders.order_id

),

unioned as (
    {%- for rule in rules %}

    select * from {{ rule }}
    {{ "union all" if not loop.last }}
    {%- endfor %}

),

-- Two rules can meet at one grain (a retried charge whose key is also repeated): keep one row, the one
-- with the larger amount at risk.
ranked as (

    select
        *,
        row_number() over (
            partition by order_id, diff_type, system
            order by amount_at_risk desc, rule
        ) as grain_rank
    from unioned

)

select
    order_id,
    customer_id,
    diff_type,
    system,
    role,
    roles_involved,
    systems_involved,
    expected_value,
    actual_value,
    cast(amount_at_risk as decimal(20,4)) as amount_at_risk,
    currency,
    rule,
    anchor_at
from ranked
where grain_rank = 1
