-- Keys repeated in a source (int_source_keys_repeated) rolled up per (order_id, system, role): the
-- duplicate_record evidence of the key rule.
{{ config(materialized='table') }}

with

repeated_keys as (

    select * from {{ ref('int_source_keys_repeated') }}

)

select
    order_id,
    source_system as system,
    role,
    count(*) as repeated_key_count,
    {{ dbt.listagg("record_id || ' x' || cast(row_count as " ~ type_text() ~ ")", "', '", 'order by record_id') }} as repeated_keys
from repeated_keys
where order_id is not null
group by order_id, source_system, role
