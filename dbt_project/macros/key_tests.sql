{#
  Generic data tests on a model's key (portable stand-ins for dbt_utils.unique_combination_of_columns).
  Failing rows: the key values and how many rows carry them.
    unique_combination(columns)  the combination is unique (null keys allowed)
    primary_key(columns)         the combination is unique and no column of it is null: one query
                                 instead of a not_null test per column plus a uniqueness test (each test
                                 is a dbt node with its own fixed cost, paid every night)
#}
{% test unique_combination(model, columns) %}
{{ key_violations(model, columns, nulls_fail=false) }}
{% endtest %}

{% test primary_key(model, columns) %}
{{ key_violations(model, columns, nulls_fail=true) }}
{% endtest %}

{% macro key_violations(model, columns, nulls_fail) -%}
select
    {{ columns | join(', ') }},
    count(*) as row_count
from {{ model }}
group by {{ columns | join(', ') }}
having count(*) > 1
    {%- if nulls_fail %}
    {%- for column in columns %}
    or {{ column }} is null
    {%- endfor %}
    {%- endif %}
{%- endmacro %}
