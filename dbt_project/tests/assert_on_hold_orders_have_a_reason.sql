-- ON_HOLD rule: every order on hold says why, and only orders on hold carry a hold_reason.
select order_id, state, hold_reason
from {{ ref('fct_orders') }}
where (state = 'ON_HOLD') <> (hold_reason is not null)
