-- Order state history: one row per (as_of_date, order_id) on which an order first appears or any of its
-- tracked figures change (state, owner, diff count, each role's presence and amount). The latest row on or
-- before D is the order as of D, so reports of past days and the latency metric need no daily copy of
-- fct_orders. A run of D replaces exactly D's rows, comparing every order with its latest row before D.
{{ day_history() }}

{%- set tracked = [
    'state', 'hold_reason', 'state_owner', 'diff_count', 'has_order_record', 'customer_id', 'currency',
    'total_amount', 'ordered_at', 'is_paid', 'net_paid_amount', 'is_invoiced', 'net_invoiced_amount',
    'is_fulfilled', 'customer_segment',
] %}
{%- set hash_parts = [] %}
{%- for column in tracked %}
    {%- do hash_parts.append("coalesce(cast(" ~ column ~ " as " ~ type_text() ~ "), '~')") %}
{%- endfor %}
{%- set hash_input = hash_parts | join(" || '|' || ") %}

with

orders as (

    select * from {{ ref('fct_orders') }}

),

{%- if is_incremental() %}

previous_ranked as (

    select
        order_id,
        state,
        row_hash,
        row_number() over (partition by order_id order by as_of_date desc) as recency
    from {{ this }}
    where as_of_date < {{ as_of_date() }}

),

previous as (

    select * from previous_ranked where recency = 1

),
{%- endif %}

hashed as (

    select
        orders.*,
        {{ dbt.hash(hash_input) }} as row_hash
    from orders

),

final as (

    select
        {{ as_of_date() }} as as_of_date,
        hashed.order_id,
        hashed.customer_id,
        hashed.state,
        {%- if is_incremental() %}
        previous.state as previous_state,
        previous.order_id is null as is_first_seen,
        {%- else %}
        cast(null as {{ type_text() }}) as previous_state,
        true as is_first_seen,
        {%- endif %}
        hashed.hold_reason,
        hashed.state_owner,
        hashed.diff_count,
        hashed.has_order_record,
        hashed.currency,
        hashed.total_amount,
        hashed.ordered_at,
        hashed.is_paid,
        hashed.net_paid_amount,
        hashed.is_invoiced,
        hashed.net_invoiced_amount,
        hashed.is_fulfilled,
        hashed.row_hash,
        hashed.customer_segment
    from hashed
    {%- if is_incremental() %}
    left join previous
        on hashed.order_id = previous.order_id
    where previous.order_id is null
        or previous.row_hash <> hashed.row_hash
    {%- endif %}

)

select * from final
