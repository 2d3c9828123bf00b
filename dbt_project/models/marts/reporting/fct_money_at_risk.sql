-- Money at risk in the day's diffs: one row per (as_of_date, diff_type, age_bucket, currency). Age is days
-- since the diff was first seen. Amounts stay in their own currency (never summed across currencies).
-- This is what the nightly run finds, before people triage it; the report's "open exceptions" view
-- subtracts what people accepted or resolved. Incremental: a run of D replaces exactly D's rows.
{{ day_history() }}

with

diffs as (

    select * from {{ ref('fct_order_diffs') }}
    where as_of_date = {{ as_of_date() }}

),

with_age as (

    select
        *,
        {{ dbt.datediff('first_seen_date', 'as_of_date', 'day') }} as age_days
    from diffs

),

aged as (

    select
        diff_type,
        coalesce(currency, 'mixed') as currency,
        amount_at_risk,
        first_seen_date,
        case
            when age_days <= 1 then '0-1 days'
            when age_days <= 3 then '2-3 days'
            when age_days <= 7 then '4-7 days'
            when age_days <= 14 then '8-14 days'
            when age_days <= 30 then '15-30 days'
            else 'over 30 days'
        end as age_bucket
    from with_age

)

select
    {{ as_of_date() }} as as_of_date,
    diff_type,
    age_bucket,
    currency,
    cast(count(*) as bigint) as diffs,
    cast(sum(amount_at_risk) as decimal(20, 4)) as amount_at_risk,
    min(first_seen_date) as oldest_first_seen_date
from aged
group by diff_type, age_bucket, currency
