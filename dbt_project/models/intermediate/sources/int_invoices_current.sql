-- The current view as of D of each invoice record, per (system, stream, invoice_id).
-- Incremental (macros/incremental_state.sql): a build recomputes only the keys whose rows changed.
{%- set plan = incremental_consumer("changed_keys_predicate('invoices', incremental_plan())") %}

with

invoices as (

    select * from {{ ref('int_invoices_unioned') }}
    where {{ changed_keys_predicate('invoices', plan) }}

),

current_invoices as (

    {{ current_versions('invoices', 'source_system, source_stream, invoice_id', ['invoice_id']) }}

)

select
    source_system,
    source_stream,
    _airbyte_raw_id,
    invoice_id,
    order_id, customer_id, kind, status, currency, amount, issued_at,
    updated_at,
    available_at
from current_invoices
