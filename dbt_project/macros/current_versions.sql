{#
  The current view as of D of each key of a unioned role relation: visible rows (is_visible_as_of)
  ranked per key by updated_at, then _airbyte_extracted_at, then _airbyte_raw_id (all descending),
  keeping rank 1. `partition_by` is the SQL list of key columns; rows with a NULL key column are dropped.
  Portable: row_number() in a subquery instead of QUALIFY.
#}
{% macro current_versions(relation, partition_by, key_columns) -%}
select * from (
    select
        *,
        row_number() over (
            partition by {{ partition_by }}
            order by updated_at desc, _airbyte_extracted_at desc, _airbyte_raw_id desc
        ) as version_rank
    from {{ relation }}
    where {{ is_visible_as_of() }}
    {%- for key in key_columns %}
        and {{ key }} is not null
    {%- endfor %}
) as ranked
where version_rank = 1
{%- endmacro %}
