-- The change set of this run (macros/incremental_state.sql): every record whose rows may have changed
-- since the oldest state of the incremental models, and every order such a record belongs or belonged
-- to. One row per (role, source_system, source_stream, record_id, order_id); role `matches` rows carry
-- the two sides of every manual match. Rebuilt each run; empty when no incremental model has state yet
-- (they then build in full). Customers carry the orders (any version) that name them.
{{ config(
    materialized='table',
    post_hook="{{ record_change_set_state() }}",
) }}
-- depends_on: {{ ref('int_orders_unioned') }}, {{ ref('int_payments_unioned') }}, {{ ref('int_invoices_unioned') }}
-- depends_on: {{ ref('int_fulfillments_unioned') }}, {{ ref('int_customers_unioned') }}
{%- set base = change_set_base() %}
{%- set matches = existing_relation('recon', 'manual_matches') %}

{%- if 'none' in base %}

select
    cast(null as varchar) as role,
    cast(null as varchar) as source_system,
    cast(null as varchar) as source_stream,
    cast(null as varchar) as record_id,
    cast(null as varchar) as order_id
where 1 = 0

{%- else %}

with

{%- for role in ['orders', 'payments', 'invoices', 'fulfillments', 'customers'] %}

changed_{{ role }} as (

    {{ changed_role_rows(role, base) }}

),
{%- endfor %}

records as (

    select 'orders' as role, cast(null as varchar) as source_system, cast(null as varchar) as source_stream,
        order_id as record_id, order_id
    from changed_orders

    {%- for role in ['payments', 'invoices', 'fulfillments'] %}
    {%- set id = role_record_id(role) %}

    union all

    -- the changed or removed rows, and every staged version of their keys (a record can move orders)
    select '{{ role }}', source_system, source_stream, {{ id }}, order_id
    from changed_{{ role }}

    union all

    select '{{ role }}', staged.source_system, staged.source_stream, staged.{{ id }}, staged.order_id
    from {{ ref('int_' ~ role ~ '_unioned') }} as staged
    inner join (select distinct source_system, source_stream, {{ id }} from changed_{{ role }}) as changed
        on staged.source_system = changed.source_system
        and staged.source_stream = changed.source_stream
        and staged.{{ id }} = changed.{{ id }}
    {%- endfor %}

    union all

    select 'customers', cast(null as varchar), cast(null as varchar), customer_id, cast(null as varchar)
    from changed_customers

    union all

    select 'customers', cast(null as varchar), cast(null as varchar), orders.customer_id, orders.order_id
    from {{ ref('int_orders_unioned') }} as orders
    where orders.customer_id in (select customer_id from changed_customers)

    {%- if matches is not none %}

    union all

    select 'matches', system, cast(null as varchar), match_id, record_order_id from {{ matches }}

    union all

    select 'matches', system, cast(null as varchar), match_id, matched_order_id from {{ matches }}
    {%- endif %}

)

select distinct role, source_system, source_stream, record_id, order_id
from records

{%- endif %}
