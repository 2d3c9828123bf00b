-- The current view as of D of each payment record, per (system, stream, payment_id).
-- Incremental (macros/incremental_state.sql): a build recomputes only the keys whose rows changed.
{%- set plan = incremental_consumer("changed_keys_predicate('payments', incremental_plan())") %}

with

payments as (

    select * from {{ ref('int_payments_unioned') }}
    where {{ changed_keys_predicate('payments', plan) }}

),

current_payments as (

    {{ current_versions('payments', 'source_system, source_stream, payment_id', ['payment_id']) }}

)

select
    source_system,
    source_stream,
    _airbyte_raw_id,
    payment_id,
    order_id, customer_id, kind, status, currency, amount, captured_at,
    updated_at,
    available_at
from current_payments
