{{ config(meta={'dagster': {'ref': {'name': 'fct_order_diffs'}}}) }}
-- Freshness rule: no diff of D involves a system that is stale as of D (it must be suppressed instead).
select diffs.order_id, diffs.diff_type, diffs.system, freshness.system as stale_system
from {{ ref('fct_order_diffs') }} as diffs
inner join {{ ref('fct_system_freshness') }} as freshness
    on diffs.as_of_date = freshness.as_of_date
    and freshness.is_stale
    and (', ' || diffs.systems_involved || ', ') like ('%, ' || freshness.system || ', %')
where diffs.as_of_date = {{ as_of_date() }}
