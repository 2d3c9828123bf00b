-- first_seen_date rule: the first sighting of a diff is never after the day it is reported for.
select as_of_date, order_id, diff_type, system, first_seen_date
from {{ ref('fct_order_diffs') }}
where first_seen_date > as_of_date
