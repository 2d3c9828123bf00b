{#
  Generic data test: the combination of `columns` is unique in the model (rows repeating it fail).
  A portable stand-in for dbt_utils.unique_combination_of_columns.
#}
{% test unique_combination(model, columns) %}
select
    {{ columns | join(', ') }},
    count(*) as row_count
from {{ model }}
group by {{ columns | join(', ') }}
having count(*) > 1
{% endtest %}
