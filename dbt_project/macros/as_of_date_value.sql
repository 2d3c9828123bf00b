{#
  The as-of day D as a Python date: var `as_of_date` (YYYY-MM-DD), else the environment variable
  RECON_AS_OF_DATE. The platform sets the environment variable so that the --vars of every nightly
  invocation stay identical and dbt can parse partially instead of re-parsing the project each day. Fails with a clear message when
  the var is missing or malformed. At parse time (execute is false) a placeholder is returned so that
  `dbt parse` / `dbt ls` work without a day.
#}
{% macro as_of_date_value() -%}
    {%- if not execute -%}
        {#- Parsing never depends on the day, so a new day never invalidates dbt's partial parse. -#}
        {%- do return(modules.datetime.date(1970, 1, 1)) -%}
    {%- endif -%}
    {%- set raw = var('as_of_date', none) -%}
    {%- if raw is none -%}
        {%- set raw = env_var('RECON_AS_OF_DATE', '') -%}
    {%- endif -%}
    {%- if raw is none or (raw | string | trim) == '' -%}
        {%- if execute -%}
            {{ exceptions.raise_compiler_error(
                "the as-of day is required (YYYY-MM-DD): set RECON_AS_OF_DATE or run dbt with "
                ~ "--vars '{as_of_date: 2026-10-05, recon: ...}' (the platform sets RECON_AS_OF_DATE)") }}
        {%- endif -%}
        {%- do return(modules.datetime.date(1970, 1, 1)) -%}
    {%- endif -%}
    {%- set text = (raw | string | trim)[:10] -%}
    {%- if not modules.re.match('^[0-9]{4}-[0-9]{2}-[0-9]{2}$', text) -%}
        {{ exceptions.raise_compiler_error("var 'as_of_date' must be a date YYYY-MM-DD, got '" ~ raw ~ "'") }}
    {%- endif -%}
    {%- do return(modules.datetime.datetime.strptime(text, '%Y-%m-%d').date()) -%}
{%- endmacro %}
