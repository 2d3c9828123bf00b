{#
  Pre-hook of the incremental per-day marts: when the table already exists (incremental run), delete the
  rows of the as-of day being built, so a rerun replaces exactly that day (even with an empty result)
  and never touches other days. `predicate` narrows it to the rows about to be recomputed.
  These models are configured full_refresh=false: they hold the history of every built day, which a
  `--full-refresh` would otherwise drop (to rebuild one from scratch, drop it and backfill the days).
#}
{% macro delete_as_of_date(predicate=none) -%}
    {%- if is_incremental() -%}
delete from {{ this }} where as_of_date = {{ as_of_date() }}{{ (' and ' ~ predicate) if predicate else '' }}
    {%- else -%}
select 1
    {%- endif -%}
{%- endmacro %}
