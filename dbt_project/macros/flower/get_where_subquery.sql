{#-
  Tests of a partitioned model check the run's window, not the whole table.

  dbt wraps the model a generic test reads in `get_where_subquery`; flower-dagster adds the
  window on the model's partition column, next to any `where` the test configures. So a daily
  run tests that day's rows: a bad day fails its own partition and no other, and a run does not
  scan years of history. With no window (a plain `dbt build`), tests cover the whole table.
  When the model was written in this `dbt build` through its audit relation (publish.sql), the
  tests read that relation: they judge the rows before anyone can see them.
-#}
{% macro default__get_where_subquery(relation) -%}
  {%- set where = config.get('where', '') -%}
  {%- set relation = flower_tested_relation(relation) -%}
  {%- set window_filter = flower_test_window_filter(relation) -%}
  {%- set conditions = [] -%}
  {%- if where -%}{%- do conditions.append('(' ~ where ~ ')') -%}{%- endif -%}
  {%- if window_filter -%}{%- do conditions.append(window_filter) -%}{%- endif -%}
  {%- if conditions -%}
    {%- set filtered -%}
      (select * from {{ relation }} where {{ conditions | join(' and ') }}) dbt_subquery
    {%- endset -%}
    {%- do return(filtered) -%}
  {%- else -%}
    {%- do return(relation) -%}
  {%- endif -%}
{%- endmacro %}

{#- The window predicate for the model a test is attached to, when the test reads that model
    and the model is partitioned; '' otherwise. -#}
{% macro flower_test_window_filter(relation) -%}
  {%- if not execute or not flower_window_bound('start') -%}
    {{ return('') }}
  {%- endif -%}
  {%- set attached = graph.nodes.get(model.attached_node) if model.attached_node else none -%}
  {%- if not attached or attached.resource_type != 'model'
        or (attached.alias or attached.name) | lower != (relation.identifier or '') | lower -%}
    {{ return('') }}
  {%- endif -%}
  {%- set flower_meta = (attached.config.meta or {}).get('flower') or {} -%}
  {%- if not (flower_meta.get('partition') and flower_meta.get('partition_column')) -%}
    {{ return('') }}
  {%- endif -%}
  {{ return(flower_in_window(adapter.quote(flower_meta['partition_column']))) }}
{%- endmacro %}

{#- The audit relation of the model a test is attached to, when this `dbt build` wrote one for it
    (the model is selected, so its pre-hook dropped any stale one); the relation otherwise. -#}
{% macro flower_tested_relation(relation) -%}
  {%- if not execute or flags.WHICH != 'build' or not model.attached_node
        or model.attached_node not in selected_resources -%}
    {{ return(relation) }}
  {%- endif -%}
  {%- set attached = graph.nodes.get(model.attached_node) -%}
  {%- if not attached or not flower_is_audited(attached)
        or (attached.alias or attached.name) | lower != (relation.identifier or '') | lower -%}
    {{ return(relation) }}
  {%- endif -%}
  {%- set audit = flower_audit_relation(relation) -%}
  {{ return(audit if flower_relation_exists(audit) else relation) }}
{%- endmacro %}
