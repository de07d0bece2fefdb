{#-
  Fails for every row whose date `column_name` is not the first day of its `period`
  ('week': a Monday, 'month': the 1st), i.e. a weekly or monthly partition key out of place.
-#}
{% test is_period_start(model, column_name, period) %}

select {{ column_name }}

from {{ model }}

where {{ column_name }} <> cast({{ dbt.date_trunc(period, column_name) }} as date)

{% endtest %}
