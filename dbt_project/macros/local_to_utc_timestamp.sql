{#
  A naive TIMESTAMP expressed in wall-clock time of `timezone` (an IANA name) as a naive TIMESTAMP in
  UTC. With timezone none the value is already UTC and returned unchanged. Dispatched.
#}
{% macro local_to_utc_timestamp(expr, timezone) -%}
    {%- if not timezone or timezone | upper == 'UTC' -%}
{{ expr }}
    {%- else -%}
    {{ return(adapter.dispatch('local_to_utc_timestamp', 'order_recon')(expr, timezone)) }}
    {%- endif -%}
{%- endmacro %}

{% macro default__local_to_utc_timestamp(expr, timezone) -%}
(({{ expr }}) at time zone {{ recon_literal(timezone) }} at time zone 'UTC')
{%- endmacro %}

{% macro duckdb__local_to_utc_timestamp(expr, timezone) -%}
timezone('UTC', timezone({{ recon_literal(timezone) }}, {{ expr }}))
{%- endmacro %}
