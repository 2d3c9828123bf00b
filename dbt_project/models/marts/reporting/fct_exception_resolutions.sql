-- Exception resolutions: one row per time an open exception was closed (resolved or matched by a person,
-- accepted, or auto-resolved because its diff vanished), from the exception store's append-only event
-- log. Days to resolve count as-of days from the latest (re)opening. The store is a source mapped to the
-- `exceptions` asset, so this model is built after it (the night's second dbt step); before the store
-- exists the view is empty.
{{ config(materialized='view') }}

{%- set system_actors = ['recon', 'recon-routing', 'recon-escalation'] %}
{%- set events_relation = load_relation(source('exception_store', 'exception_events')) %}
{%- set exceptions_relation = load_relation(source('exception_store', 'exceptions')) %}

{%- if events_relation is not none and exceptions_relation is not none %}

with

events as (

    select
        event_id,
        exception_id,
        as_of_date,
        event_type,
        actor,
        from_status,
        to_status,
        recorded_at
    from {{ events_relation }}

),

exceptions as (

    select
        exception_id,
        order_id,
        diff_type,
        system,
        owner,
        severity
    from {{ exceptions_relation }}

),

sequenced as (

    select
        events.*,
        max(case when event_type in ('opened', 'reopened') then as_of_date end) over (
            partition by exception_id
            order by recorded_at, event_id
            rows between unbounded preceding and current row
        ) as opened_as_of_date
    from events

),

closings as (

    select * from sequenced
    where to_status in ('resolved', 'auto_resolved', 'accepted')
        and from_status in ('open', 'acknowledged')

)

select
    closings.event_id,
    closings.exception_id,
    exceptions.order_id,
    exceptions.diff_type,
    exceptions.system,
    exceptions.owner,
    exceptions.severity,
    closings.opened_as_of_date,
    closings.as_of_date as resolved_as_of_date,
    closings.to_status as resolution,
    closings.actor,
    closings.actor not in ('{{ system_actors | join("', '") }}') as is_manual,
    cast({{ dbt.datediff('closings.opened_as_of_date', 'closings.as_of_date', 'day') }} as bigint) as days_to_resolve,
    closings.recorded_at as resolved_at
from closings
inner join exceptions
    on closings.exception_id = exceptions.exception_id

{%- else %}

select
    cast(null as {{ type_text() }}) as event_id,
    cast(null as {{ type_text() }}) as exception_id,
    cast(null as {{ type_text() }}) as order_id,
    cast(null as {{ type_text() }}) as diff_type,
    cast(null as {{ type_text() }}) as system,
    cast(null as {{ type_text() }}) as owner,
    cast(null as {{ type_text() }}) as severity,
    cast(null as date) as opened_as_of_date,
    cast(null as date) as resolved_as_of_date,
    cast(null as {{ type_text() }}) as resolution,
    cast(null as {{ type_text() }}) as actor,
    cast(null as boolean) as is_manual,
    cast(null as bigint) as days_to_resolve,
    cast(null as timestamp) as resolved_at
where 1 = 0

{%- endif %}
