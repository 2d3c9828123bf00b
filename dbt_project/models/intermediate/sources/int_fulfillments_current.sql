-- The current view as of D of each fulfillment record, per (system, stream, fulfillment_id).
-- Incremental (macros/incremental_state.sql): a build recomputes only the keys whose rows changed.
{%- set plan = incremental_consumer("changed_keys_predicate('fulfillments', incremental_plan())") %}

with

fulfillments as (

    select * from {{ ref('int_fulfillments_unioned') }}
    where {{ changed_keys_predicate('fulfillments', plan) }}

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
    available_at
from current_fulfillments
