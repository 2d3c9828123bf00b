-- The current view as of D of each fulfillment record, per (system, stream, fulfillment_id).
-- Incremental (macros/incremental_state.sql): a build recomputes only the keys whose rows changed.
{{ config(
    materialized='incremental',
    incremental_strategy='append',
    on_schema_change='sync_all_columns',
    pre_hook="{{ delete_changed_rows(changed_keys_predicate('fulfillments', incremental_plan())) }}",
    post_hook="{{ record_incremental_state(incremental_plan()) }}",
) }}
-- depends_on: {{ ref('int_changed_records') }}
{%- set plan = incremental_plan() %}

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
