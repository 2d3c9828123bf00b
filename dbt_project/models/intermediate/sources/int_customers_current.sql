-- The current view as of D of each customer (across the systems of the customers role).
-- The record-version model: macros/current_versions.sql.
{{ config(materialized='table') }}

with

customers as (

    select * from {{ ref('int_customers_unioned') }}

),

current_customers as (

    {{ current_versions('customers', 'customer_id', ['customer_id']) }}

)

select
    source_system,
    source_stream,
    _airbyte_raw_id,
    customer_id,
    segment,
    plan,
    account_owner,
    updated_at,
    available_at,
    delivery_id,
    delivered_at,
    delivery_repeat_count
from current_customers
