{#
  Whether the whole of a text expression matches a regular expression (a SQL string literal without
  anchors). Dispatched: DuckDB's regexp_full_match, Postgres's anchored `~`, Spark's anchored `rlike`.
#}
{% macro regex_full_match(expr, pattern_literal) -%}
    {{ return(adapter.dispatch('regex_full_match', 'order_recon')(expr, pattern_literal)) }}
{%- endmacro %}

{% macro default__regex_full_match(expr, pattern_literal) -%}
({{ expr }} ~ ('^(?:' || {{ pattern_literal }} || ')$'))
{%- endmacro %}

{% macro duckdb__regex_full_match(expr, pattern_literal) -%}
regexp_full_match({{ expr }}, {{ pattern_literal }})
{%- endmacro %}

{#- A Spark string literal unescapes backslashes: the pattern's are doubled so that the regular expression
    gets them, as DuckDB's and Postgres's do. -#}
{% macro spark__regex_full_match(expr, pattern_literal) -%}
({{ expr }} rlike concat('^(?:', {{ pattern_literal | replace('\\', '\\\\') }}, ')$'))
{%- endmacro %}
