{#-
  Fails for every combination of `combination_of_columns` held by more than one row:
  the grain of a roll-up (e.g. one row per order_date and country).
-#}
{% test unique_combination_of_columns(model, combination_of_columns) %}

select
    {{ combination_of_columns | join(', ') }},
    count(*) as row_count

from {{ model }}

group by {{ combination_of_columns | join(', ') }}

having count(*) > 1

{% endtest %}
