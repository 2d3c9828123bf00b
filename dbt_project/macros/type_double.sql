{#
  The 8-byte floating-point type, spelt as each engine spells it: `double` on DuckDB and Spark, `double
  precision` elsewhere (Postgres has no `double`). dbt's own `type_float()` is not it: on DuckDB `float`
  is the 4-byte REAL.
#}
{% macro type_double() -%}
    {{ return(adapter.dispatch('type_double', 'order_recon')()) }}
{%- endmacro %}

{% macro default__type_double() -%}double precision{%- endmacro %}

{% macro duckdb__type_double() -%}double{%- endmacro %}

{% macro spark__type_double() -%}double{%- endmacro %}

{#
  An expression as a double, for a ratio computed in floating point on every engine: write
  `{{ to_double('a') }} / b`, not `1.0 * a / b`. DuckDB divides a decimal in double anyway (the same
  result), but Spark divides decimals in decimal and keeps 6 places, and Postgres in numeric.
#}
{% macro to_double(expr) -%}
    cast({{ expr }} as {{ type_double() }})
{%- endmacro %}
