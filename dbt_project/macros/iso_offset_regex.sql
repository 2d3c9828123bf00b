{#
  A regular expression (SQL string literal) matching an ISO-8601 time that ends in a UTC offset
  (`Z`, `+02`, `+0200`, `+02:00`), so that parse_timestamp() can tell aware from naive text.
#}
{% macro iso_offset_regex() -%}
'[0-9]{2}:[0-9]{2}(:[0-9]{2}([.,][0-9]+)?)?[[:space:]]*([zZ]|[+-][0-9]{2}(:?[0-9]{2})?)$'
{%- endmacro %}
