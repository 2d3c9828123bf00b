-- Freshness of each configured system as of D: the latest evidence that it delivered (a file with rows,
-- or a successful sync, known before cutoff(D); or a current row updated before it) and whether that is
-- older than its freshness_hours. An empty or header-only file is no evidence: it carried nothing.
-- Also how many of the system's landed rows are visible as of D, and, when the system is stale or (almost)
-- none of its landed rows are visible (share <= its min_visible_share), why: `health_reason`.
{{ config(materialized='table') }}

{%- set cfg = recon_config() %}

with

landed_files as (

    select * from {{ source('recon_meta', 'landed_files') }}

),

orders as (

    select source_system, updated_at from {{ ref('int_orders_current') }}

),

payments as (

    select source_system, updated_at from {{ ref('int_payments_current') }}

),

invoices as (

    select source_system, updated_at from {{ ref('int_invoices_current') }}

),

fulfillments as (

    select source_system, updated_at from {{ ref('int_fulfillments_current') }}

),

customers as (

    select source_system, updated_at from {{ ref('int_customers_current') }}

),

configured_systems as (

    {%- for system in cfg.systems.keys() | sort %}
    {%- set hours = cfg.systems[system].get('freshness_hours') %}
    select
        {{ recon_literal(system) }} as system,
        {{ recon_literal(cfg.systems[system].get('role')) }} as role,
        cast({{ cfg.systems[system].get('min_visible_share') or 0 }} as {{ type_double() }}) as min_visible_share,
        cast({{ hours if hours is not none else 'null' }} as integer) as freshness_hours,
        {{ as_of_cutoff(hours) if hours is not none else 'cast(null as timestamp)' }} as stale_before
    {{ "union all" if not loop.last }}
    {%- else %}
    select
        cast(null as {{ type_text() }}) as system,
        cast(null as {{ type_text() }}) as role,
        cast(null as {{ type_double() }}) as min_visible_share,
        cast(null as integer) as freshness_hours,
        cast(null as timestamp) as stale_before
    where 1 = 0
    {%- endfor %}

),

files_seen as (

    select
        system,
        max(modified_at) as last_file_at
    from (
        select system, {{ to_utc_timestamp('file_modified_at') }} as modified_at
        from landed_files
        where records_landed > 0 or file_path like 'sync://%'
    ) as files
    where modified_at < {{ as_of_cutoff() }}
    group by system

),

rows_seen as (

    select source_system as system, max(updated_at) as last_row_at
    from (
        select * from orders
        union all
        select * from payments
        union all
        select * from invoices
        union all
        select * from fulfillments
        union all
        select * from customers
    ) as current_rows
    group by source_system

),

staged_rows as (

    {%- set roles = cfg.get('roles') or {} %}
    {%- set staged = [] %}
    {%- for role in ['orders', 'payments', 'invoices', 'fulfillments', 'customers'] if roles.get(role) %}
        {%- do staged.append(role) %}
    {%- endfor %}
    {#- Rows delivered before cutoff(D) only: which of them the contracts quarantined is decided as of D;
        a later delivery's rows, quarantined or not by a later day's contract, are counted from the
        landing bookkeeping instead (files_after), so a replay of D after later days gives D again. #}
    select
        source_system as system,
        sum(case when available_at is null or available_at < {{ as_of_cutoff() }} then 1 else 0 end)
            as known_rows,
        sum(case when (available_at is null or available_at < {{ as_of_cutoff() }})
                  and updated_at < {{ as_of_cutoff() }} then 1 else 0 end) as visible_rows
    from (
        {%- for role in staged %}
        select source_system, available_at, updated_at from {{ ref('int_' ~ role ~ '_unioned') }}
        {{ "union all" if not loop.last }}
        {%- else %}
        select cast(null as {{ type_text() }}) as source_system, cast(null as timestamp) as available_at,
            cast(null as timestamp) as updated_at
        where 1 = 0
        {%- endfor %}
    ) as rows_landed
    group by source_system

),

files_after as (

    select system, sum(records_landed) as known_after_rows
    from landed_files
    where {{ to_utc_timestamp('file_modified_at') }} >= {{ as_of_cutoff() }}
    group by system

),

joined as (

    select
        configured_systems.system,
        configured_systems.role,
        configured_systems.freshness_hours,
        case
            when files_seen.last_file_at is null then rows_seen.last_row_at
            when rows_seen.last_row_at is null then files_seen.last_file_at
            when files_seen.last_file_at > rows_seen.last_row_at then files_seen.last_file_at
            else rows_seen.last_row_at
        end as last_seen_at,
        configured_systems.stale_before,
        configured_systems.min_visible_share,
        coalesce(staged_rows.known_rows, 0) + coalesce(files_after.known_after_rows, 0) as landed_rows,
        coalesce(staged_rows.visible_rows, 0) as visible_rows,
        coalesce(files_after.known_after_rows, 0) as known_after_rows
    from configured_systems
    left join staged_rows
        on configured_systems.system = staged_rows.system
    left join files_after
        on configured_systems.system = files_after.system
    left join files_seen
        on configured_systems.system = files_seen.system
    left join rows_seen
        on configured_systems.system = rows_seen.system

),

stated as (

    select
        *,
        coalesce(stale_before is not null and (last_seen_at is null or last_seen_at < stale_before), false) as is_stale
    from joined

)

select
    {{ as_of_date() }} as as_of_date,
    system,
    role,
    freshness_hours,
    last_seen_at,
    is_stale,
    cast(landed_rows as bigint) as landed_rows,
    cast(visible_rows as bigint) as visible_rows,
    case
        when landed_rows > 0 and visible_rows <= landed_rows * min_visible_share then
            cast(visible_rows as {{ type_text() }}) || ' of ' || cast(landed_rows as {{ type_text() }})
            || ' landed rows are visible as of the day: '
            || case when known_after_rows > 0 then 'files modified after the as-of day'
                    else 'rows updated after the as-of day' end
        when is_stale and last_seen_at is null then 'stale: nothing delivered before the end of the as-of day'
        when is_stale then 'stale since ' || cast(last_seen_at as {{ type_text() }}) || ' (freshness '
            || cast(freshness_hours as {{ type_text() }}) || ' h)'
    end as health_reason
from stated
