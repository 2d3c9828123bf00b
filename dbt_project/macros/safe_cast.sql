{#
  dbt's cross-database `safe_cast` for DuckDB: `try_cast`, so one unparseable value in a source
  (for example an amount written "1.234,56") becomes NULL instead of failing the whole nightly build.
  The contract checks quarantine such rows before staging reads them; this keeps the models standing
  when a stream is reconciled without its contract (dbt run by hand, a benchmark). dbt-duckdb does not
  ship this variant; dbt_project.yml puts this project first in the `dbt` dispatch search order.
#}
{% macro duckdb__safe_cast(field, type) -%}
    try_cast({{ field }} as {{ type }})
{%- endmacro %}

{#
  The same on Postgres, which has no try_cast: a number is cast only when its text is one (DuckDB's
  try_cast gives NULL for "1.234,56", Postgres's cast fails the whole model). Other types cast as dbt does.
#}
{% macro postgres__safe_cast(field, type) -%}
    {%- set t = type | lower -%}
    {%- if t.startswith('decimal') or t.startswith('numeric') or t in ('bigint', 'integer', 'smallint', 'int', 'double precision', 'real') -%}
    case when trim(cast({{ field }} as text)) ~ '^[+-]?([0-9]+(\.[0-9]*)?|\.[0-9]+)([eE][+-]?[0-9]+)?$'
         then cast(trim(cast({{ field }} as text)) as {{ type }}) end
    {%- else -%}
    cast({{ field }} as {{ type }})
    {%- endif -%}
{%- endmacro %}
