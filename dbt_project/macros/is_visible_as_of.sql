{#
  The visibility predicate of a staged row as of D: updated before cutoff(D), and known before it
  (available_at null or before cutoff(D)). `alias` prefixes the columns (e.g. 'p').
#}
{% macro is_visible_as_of(alias=none) -%}
    {%- set p = (alias ~ '.') if alias else '' -%}
({{ p }}updated_at < {{ as_of_cutoff() }} and ({{ p }}available_at is null or {{ p }}available_at < {{ as_of_cutoff() }}))
{%- endmacro %}
