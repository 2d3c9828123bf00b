-- The canonical order as of D: one row per order_id seen in any system (int_orders_stated) with the
-- as-of day of the latest build. A view: the day is the only column that changes
{{ config(materialized='view') }}

select
    {{ as_of_date() }} as as_of_date,
    stated.*
from {{ ref('int_orders_stated') }} as stated
