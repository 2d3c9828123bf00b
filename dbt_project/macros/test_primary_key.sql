{#
  Generic data test: `columns` are the model's key: never null and unique together. One query instead
  of a not_null test per column plus a uniqueness test (each test is a dbt node with its own fixed cost,
  which a nightly run pays for every one of them). Failing rows: the key values and how many rows carry
  them (null keys appear with their count).
#}
{% test primary_key(model, columns) %}
select
    {{ columns | join(', ') }},
    count(*) as row_count
from {{ model }}
group by {{ columns | join(', ') }}
having count(*) > 1
    {%- for column in columns %}
    or {{ column }} is null
    {%- endfor %}
{% endtest %}
