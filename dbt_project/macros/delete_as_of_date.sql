{#
  Pre-hook of the incremental per-day marts: when the table already exists (incremental run), delete the
  rows of the as-of day being built, so a rerun replaces exactly that day (even with an empty result)
  and never touches other days.
#}
{% macro delete_as_of_date() -%}
    {%- if is_incremental() -%}
delete from {{ this }} where as_of_date = {{ as_of_date() }}
    {%- else -%}
select 1
    {%- endif -%}
{%- endmacro %}
