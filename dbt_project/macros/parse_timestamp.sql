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
    {#- Postgres has no try_ functions: each parse is guarded by a pattern of the text it accepts, so
        unparseable text is NULL here too instead of failing the model. -#}
    {%- set tokens = [('%Y', 'YYYY'), ('%m', 'MM'), ('%d', 'DD'), ('%H', 'HH24'), ('%M', 'MI'), ('%S', 'SS'),
                      ('%f', 'US'), ('%z', 'TZH:TZM'), ('%y', 'YY'), ('%b', 'Mon'), ('%p', 'AM'), ('%I', 'HH12')] -%}
    {%- set date_part = "'^[0-9]{4}-[0-9]{1,2}-[0-9]{1,2}'" -%}
    {%- if formats | length == 0 -%}
case
        when {{ text }} is null then null
        when {{ text }} ~ {{ iso_offset_regex() }} and {{ text }} ~ ({{ date_part }} || '[ T]')
            then cast({{ text }} as timestamp with time zone) at time zone 'UTC'
        when {{ text }} ~ ({{ date_part }} || '([ T][0-9]{1,2}:[0-9]{2}(:[0-9]{2}([.][0-9]+)?)?)?$')
            then {{ local_to_utc_timestamp('cast(' ~ text ~ ' as timestamp)', timezone) }}
    end
    {%- else -%}
coalesce(
        {%- for f in formats %}
        {%- if f == 'epoch_seconds' %}
        to_timestamp({{ dbt.safe_cast(text, "numeric") }}) at time zone 'UTC'
        {%- elif f == 'epoch_millis' %}
        to_timestamp({{ dbt.safe_cast(text, "numeric") }} / 1000) at time zone 'UTC'
        {%- else %}
            {%- set ns = namespace(pattern=f) -%}
            {%- for a, b in tokens -%}{%- set ns.pattern = ns.pattern | replace(a, b) -%}{%- endfor %}
            {%- set guard = "(" ~ text ~ " ~ " ~ recon_literal(strptime_regex(f)) ~ ")" %}
            {%- if '%z' in f %}
        case when {{ guard }} then to_timestamp({{ text }}, {{ recon_literal(ns.pattern) }}) at time zone 'UTC' end
            {%- else %}
        case when {{ guard }} then {{ local_to_utc_timestamp('cast(to_timestamp(' ~ text ~ ', ' ~ recon_literal(ns.pattern) ~ ") at time zone 'UTC' as timestamp)", timezone) }} end
            {%- endif %}
        {%- endif %}{{ "," if not loop.last }}
        {%- endfor %}
    )
    {%- endif -%}
{%- endmacro %}

{#- An anchored regular expression of the text a strptime pattern accepts (the guard of a parse where the
    engine has no try_strptime). -#}
{% macro strptime_regex(pattern) -%}
    {%- set parts = {'Y': '[0-9]{4}', 'y': '[0-9]{2}', 'm': '[0-9]{1,2}', 'd': '[0-9]{1,2}', 'H': '[0-9]{1,2}',
                     'I': '[0-9]{1,2}', 'M': '[0-9]{1,2}', 'S': '[0-9]{1,2}', 'f': '[0-9]{1,6}',
                     'z': '([zZ]|[+-][0-9]{2}:?[0-9]{2})', 'b': '[A-Za-z]{3}', 'p': '[AaPp][Mm]', '%': '%'} -%}
    {%- set ns = namespace(out='^', escape=false) -%}
    {%- for ch in pattern -%}
        {%- if ns.escape -%}
            {%- set ns.out = ns.out ~ parts.get(ch, '.+') -%}{%- set ns.escape = false -%}
        {%- elif ch == '%' -%}{%- set ns.escape = true -%}
        {%- elif ch.isalnum() or ch == ' ' -%}{%- set ns.out = ns.out ~ ch -%}
        {%- else -%}{%- set ns.out = ns.out ~ '[' ~ ch ~ ']' -%}
        {%- endif -%}
    {%- endfor -%}
    {{- return(ns.out ~ '$') -}}
{%- endmacro %}
