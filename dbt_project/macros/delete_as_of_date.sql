{#
  The per-day history marts (fct_order_diffs, fct_system_freshness, fct_order_state_history and the
  metrics marts): one set of rows per built as-of day. `day_history()` is their configuration:
  incremental by append, new columns appended, and full_refresh=false, since a `--full-refresh` would
  drop every other day (to rebuild one from scratch, drop it and backfill the days). Its pre-hook
  (delete_as_of_date) deletes the rows of the day being built, so a rerun replaces exactly that day
  (even with an empty result) and never touches other days.
#}
{% macro day_history() -%}
    {%- if target.type == 'spark' -%}
    {#- Plain Parquet tables on Spark cannot delete rows: the day is a partition, replaced whole by an
        insert overwrite (dynamic partition overwrite: other days untouched). Unlike the delete, a rerun
        whose result is empty leaves the day's earlier rows in place. -#}
    {%- do config(
        materialized='incremental',
        incremental_strategy='insert_overwrite',
        partition_by=['as_of_date'],
        file_format='parquet',
        on_schema_change='append_new_columns',
        full_refresh=false,
    ) -%}
    {%- else -%}
    {%- do config(
        materialized='incremental',
        incremental_strategy='append',
        on_schema_change='append_new_columns',
        full_refresh=false,
        pre_hook="{{ delete_as_of_date() }}",
    ) -%}
    {%- endif -%}
{%- endmacro %}

{% macro delete_as_of_date() -%}
    {%- if is_incremental() -%}
delete from {{ this }} where as_of_date = {{ as_of_date() }}
    {%- else -%}
select 1
    {%- endif -%}
{%- endmacro %}
