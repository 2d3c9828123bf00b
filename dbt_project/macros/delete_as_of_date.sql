{#
  The per-day history marts (fct_order_diffs, fct_system_freshness, fct_order_state_history and the
  metrics marts): one set of rows per built as-of day. `day_history()` is their configuration:
  incremental by append, new columns appended, and full_refresh=false, since a `--full-refresh` would
  drop every other day (to rebuild one from scratch, drop it and backfill the days). Its pre-hook
  (delete_as_of_date) deletes the rows of the day being built, so a rerun replaces exactly that day
  (even with an empty result) and never touches other days; `rows_to_replace` (the text of a predicate
  macro call, rendered at run time) narrows that to the rows about to be recomputed.
#}
{% macro day_history(rows_to_replace=none) -%}
    {%- do config(
        materialized='incremental',
        incremental_strategy='append',
        on_schema_change='append_new_columns',
        full_refresh=false,
        pre_hook="{{ delete_as_of_date(" ~ (rows_to_replace or '') ~ ") }}",
    ) -%}
{%- endmacro %}

{% macro delete_as_of_date(predicate=none) -%}
    {%- if is_incremental() -%}
delete from {{ this }} where as_of_date = {{ as_of_date() }}{{ (' and ' ~ predicate) if predicate else '' }}
    {%- else -%}
select 1
    {%- endif -%}
{%- endmacro %}
