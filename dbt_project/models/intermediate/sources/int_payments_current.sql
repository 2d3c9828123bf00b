-- The current view as of D of each payment record, per (system, stream, payment_id).
-- The record-version model: macros/current_versions.sql.
{{ config(materialized='table') }}

with

payments as (

    select * from {{ ref('int_payments_unioned') }}

),

current_payments as (

    {{ current_versions('payments', 'source_system, source_stream, payment_id', ['payment_id']) }}

)

select
    source_system,
    source_stream,
    _airbyte_raw_id,
    payment_id,
    order_id, customer_id, kind, status, currency, amount, refunded_amount, captured_at,
    updated_at,
    available_at,
    delivery_id,
    delivered_at,
    delivery_repeat_count
from current_payments
