{#
  cutoff(D) minus `hours` as a SQL timestamp literal (naive UTC). cutoff(D) = D + 1 day 00:00 UTC,
  exclusive. `as_of_cutoff()` is the visibility cutoff; `as_of_cutoff(grace)` is the bound a grace
  window's anchor must be strictly below (anchor + grace < cutoff <=> anchor < cutoff - grace).
  `day` (a date or YYYY-MM-DD text) replaces D, for comparing two as-of days.
  Computed in Jinja so the SQL compares against a constant (portable and index/zone-map friendly).
#}
{% macro as_of_cutoff(hours=0, day=none) -%}
    {%- set d = as_of_date_value() if day is none else day -%}
    {%- if d is string -%}{%- set d = modules.datetime.datetime.strptime(d[:10], '%Y-%m-%d') -%}{%- endif -%}
    {%- set cutoff = modules.datetime.datetime(d.year, d.month, d.day) + modules.datetime.timedelta(days=1) -%}
    {%- set bound = cutoff - modules.datetime.timedelta(hours=(hours or 0) | float) -%}
cast('{{ bound.strftime("%Y-%m-%d %H:%M:%S") }}' as timestamp)
{%- endmacro %}
