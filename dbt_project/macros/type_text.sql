{#
  The text type, spelt as each engine spells it: `varchar` on DuckDB and Postgres, `string` on Spark
  (whose `varchar` needs a length).
#}
{% macro type_text() -%}
    {{ return(adapter.dispatch('type_text', 'order_recon')()) }}
{%- endmacro %}

{% macro default__type_text() -%}varchar{%- endmacro %}

{% macro spark__type_text() -%}string{%- endmacro %}

{#- A SQL type the catalogue or a contract spells the DuckDB/Postgres way, as this engine spells it. -#}
{% macro engine_type(type) -%}
    {{ return(adapter.dispatch('engine_type', 'order_recon')(type)) }}
{%- endmacro %}

{% macro default__engine_type(type) -%}{{ type }}{%- endmacro %}

{% macro spark__engine_type(type) -%}
    {%- set t = type | lower | trim -%}
    {%- if t in ('varchar', 'text') -%}string
    {%- elif t == 'double precision' -%}double
    {%- elif t in ('timestamptz', 'timestamp with time zone') -%}timestamp
    {%- else -%}{{ type }}
    {%- endif -%}
{%- endmacro %}
