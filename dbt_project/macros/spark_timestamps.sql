{#
  Spark variants of the timestamp macros. The Spark session runs in UTC (profiles.yml), and Spark's
  TIMESTAMP is an instant shown in the session time zone: a naive UTC timestamp is that TIMESTAMP.
#}
{% macro spark__to_utc_timestamp(expr) -%}
cast({{ expr }} as timestamp)
{%- endmacro %}

{% macro spark__local_to_utc_timestamp(expr, timezone) -%}
to_utc_timestamp({{ expr }}, {{ recon_literal(timezone) }})
{%- endmacro %}
