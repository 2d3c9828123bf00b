-- The current view as of D of each customer (across the systems of the customers role).
-- Incremental (macros/incremental_state.sql): a build recomputes only the keys whose rows changed.
{%- set plan = incremental_consumer("changed_keys_predicate('customers', incremental_plan())") %}

with

customers as (

    select * from {{ ref('int_customers_unioned') }}
    where {{ changed_keys_predicate('customers', plan) }}

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
    available_at
from current_customers
