{#
  A time-zone-aware timestamp expression (or a naive one, read as UTC) as a naive TIMESTAMP in UTC,
  independent of the session time zone. Dispatched: DuckDB timezone('UTC', ...), default AT TIME ZONE.
#}
{% macro to_utc_timestamp(expr) -%}
    {{ return(adapter.dispatch('to_utc_timestamp', 'order_recon')(expr)) }}
{%- endmacro %}

{% macro default__to_utc_timestamp(expr) -%}
(cast({{ expr }} as timestamp with time zone) at time zone 'UTC')
{%- endmacro %}

{% macro duckdb__to_utc_timestamp(expr) -%}
timezone('UTC', cast({{ expr }} as timestamptz))
{%- endmacro %}
