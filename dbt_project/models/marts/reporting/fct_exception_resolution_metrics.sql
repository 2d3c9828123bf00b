-- Resolution metrics: one row per (resolved_as_of_date, owner, diff_type): how many exceptions were closed,
-- how many a person had to close (manual intervention), and the mean time to resolution in as-of days.
-- Rates over a window are sum(manual_resolutions) / sum(resolutions) of its rows. A view over
-- fct_exception_resolutions (see there why).
{{ config(materialized='view') }}

with

resolutions as (

    select * from {{ ref('fct_exception_resolutions') }}

)

select
    resolved_as_of_date,
    coalesce(owner, 'unowned') as owner,
    diff_type,
    cast(count(*) as bigint) as resolutions,
    cast(sum(case when is_manual then 1 else 0 end) as bigint) as manual_resolutions,
    cast(sum(days_to_resolve) as bigint) as total_days_to_resolve,
    cast(avg(days_to_resolve) as {{ type_double() }}) as mean_days_to_resolve,
    cast(1.0 * sum(case when is_manual then 1 else 0 end) / count(*) as {{ type_double() }}) as manual_intervention_rate
from resolutions
group by resolved_as_of_date, coalesce(owner, 'unowned'), diff_type
