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
