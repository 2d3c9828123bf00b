{#
  Parses a text expression (NULL when empty) into a naive TIMESTAMP in UTC, whatever the session time zone.
  - formats empty: ISO-8601 with or without an offset; a value without offset is wall-clock time in
    `timezone` (or UTC when timezone is none).
  - formats: tried in order, first match wins: strptime patterns (a pattern with %z/%Z carries its own
    offset, otherwise `timezone` applies), or `epoch_seconds` / `epoch_millis`.
  Unparseable text yields NULL (DuckDB try_ functions); the contract checks flag such rows upstream.
  Dispatched: duckdb__ variant and a default__ (Postgres) one.
#}
{% macro parse_timestamp(text, formats=[], timezone=none) -%}
    {{ return(adapter.dispatch('parse_timestamp', 'order_recon')(text, formats or [], timezone)) }}
{%- endmacro %}

{% macro duckdb__parse_timestamp(text, formats, timezone) -%}
    {%- if formats | length == 0 -%}
case
        when {{ text }} is null then null
        when regexp_matches({{ text }}, {{ iso_offset_regex() }}) then timezone('UTC', try_cast({{ text }} as timestamptz))
        else {{ local_to_utc_timestamp('try_cast(' ~ text ~ ' as timestamp)', timezone) }}
    end
    {%- else -%}
coalesce(
        {%- for f in formats %}
        {%- if f == 'epoch_seconds' %}
        epoch_ms(cast(try_cast({{ text }} as decimal(38,3)) * 1000 as bigint))
        {%- elif f == 'epoch_millis' %}
        epoch_ms(cast(try_cast({{ text }} as decimal(38,3)) as bigint))
        {%- elif '%z' in f or '%Z' in f %}
        timezone('UTC', try_strptime({{ text }}, {{ recon_literal(f) }}))
        {%- else %}
        {{ local_to_utc_timestamp('try_strptime(' ~ text ~ ', ' ~ recon_literal(f) ~ ')', timezone) }}
        {%- endif %}{{ "," if not loop.last }}
        {%- endfor %}
    )
    {%- endif -%}
{%- endmacro %}

{% macro default__parse_timestamp(text, formats, timezone) -%}
    {%- set tokens = [('%Y', 'YYYY'), ('%m', 'MM'), ('%d', 'DD'), ('%H', 'HH24'), ('%M', 'MI'), ('%S', 'SS'),
                      ('%f', 'US'), ('%z', 'TZH:TZM'), ('%y', 'YY'), ('%b', 'Mon'), ('%p', 'AM'), ('%I', 'HH12')] -%}
    {%- if formats | length == 0 -%}
case
        when {{ text }} is null then null
        when {{ text }} ~ {{ iso_offset_regex() }} then cast({{ text }} as timestamp with time zone) at time zone 'UTC'
        else {{ local_to_utc_timestamp('cast(' ~ text ~ ' as timestamp)', timezone) }}
    end
    {%- else -%}
coalesce(
        {%- for f in formats %}
        {%- if f == 'epoch_seconds' %}
        to_timestamp(cast({{ text }} as numeric)) at time zone 'UTC'
        {%- elif f == 'epoch_millis' %}
        to_timestamp(cast({{ text }} as numeric) / 1000) at time zone 'UTC'
        {%- else %}
            {%- set ns = namespace(pattern=f) -%}
            {%- for a, b in tokens -%}{%- set ns.pattern = ns.pattern | replace(a, b) -%}{%- endfor %}
            {%- if '%z' in f %}
        to_timestamp({{ text }}, {{ recon_literal(ns.pattern) }}) at time zone 'UTC'
            {%- else %}
        {{ local_to_utc_timestamp('cast(to_timestamp(' ~ text ~ ', ' ~ recon_literal(ns.pattern) ~ ") at time zone 'UTC' as timestamp)", timezone) }}
            {%- endif %}
        {%- endif %}{{ "," if not loop.last }}
        {%- endfor %}
    )
    {%- endif -%}
{%- endmacro %}
