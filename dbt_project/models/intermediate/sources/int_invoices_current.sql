-- The current view as of D of each invoice record, per (system, stream, invoice_id).
-- The record-version model: macros/current_versions.sql.
{{ config(materialized='table') }}

with

invoices as (

    select * from {{ ref('int_invoices_unioned') }}

),

current_invoices as (

    {{ current_versions('invoices', 'source_system, source_stream, invoice_id', ['invoice_id']) }}

)

select
    source_system,
    source_stream,
    _airbyte_raw_id,
    invoice_id,
    order_id, customer_id, kind, status, currency, amount, credited_amount, issued_at,
    updated_at,
    available_at,
    delivery_id,
    delivered_at,
    delivery_repeat_count
from current_invoices
