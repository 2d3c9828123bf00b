{#- A text expression quoted for a POSIX shell, as Python's shlex.quote does: unchanged when it
    holds only safe characters, else in single quotes with each ' written as '"'"'. An order id
    comes from the source (`SO-X'; drop table x; --`), so a command built from it is quoted. -#}
{% macro shell_quote(expr) -%}
case when {{ regex_full_match(expr, "'[A-Za-z0-9_@%+=:,./-]+'") }} then {{ expr }}
     else '''' || replace({{ expr }}, '''', '''"''"''') || '''' end
{%- endmacro %}
