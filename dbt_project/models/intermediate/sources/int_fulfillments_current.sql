-- The current view as of D of each fulfillment record, per (system, stream, fulfillment_id).
-- The record-version model: macros/current_versions.sql.
{{ config(materialized='table') }}

with

fulfillments as (

    select * from {{ ref('int_fulfillments_unioned') }}

),

current_fulfillments as (

    {{ current_versions('fulfillments', 'source_system, source_stream, fulfillment_id', ['fulfillment_id']) }}

)

select
    source_system,
    source_stream,
    _airbyte_raw_id,
    fulfillment_id,
    order_id, kind, status, line_count, fulfilled_at,
    updated_at,
    available_at,
    delivery_id,
    delivered_at,
    delivery_repeat_count
from current_fulfillments
