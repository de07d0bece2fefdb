{#-
  Incremental strategy `partition_overwrite`: replace exactly the run's partition window.

  The window's new rows are written to the model's audit relation, not to its table; they
  replace the table's rows of the window only once the model's tests passed on them
  (publish.sql: write, audit, publish). Publishing deletes the whole window before inserting,
  so a re-run is idempotent and a window whose new data is empty leaves that window empty.
  A project without the publish hooks (dbt_project.yml) replaces the window directly: delete and
  insert in the model's transaction.
  The partition column is the model's `meta.flower.partition_column`.
-#}
{% macro get_incremental_partition_overwrite_sql(arg_dict) -%}
  {%- set target = arg_dict['target_relation'] -%}
  {%- set source = arg_dict['temp_relation'] -%}
  {%- set dest_columns = arg_dict['dest_columns'] -%}
  {%- set flower_meta = (config.get('meta') or {}).get('flower') or {} -%}
  {%- set partition_column = flower_meta.get('partition_column') -%}
  {%- if not partition_column -%}
    {{ exceptions.raise_compiler_error(
        "flower: model " ~ model.name ~ " uses incremental_strategy 'partition_overwrite' "
        ~ "but has no meta.flower.partition_column") }}
  {%- endif -%}
  {%- set partition = adapter.quote(partition_column) -%}
  {#- A window that does not cover whole partitions would delete one set of rows and insert
      another: refuse it before touching the table. -#}
  {%- if flower_window_bound('start') -%}
    {%- set outside = run_query(
        "select count(*) from " ~ source ~ " where not " ~ flower_in_window(partition)
        ~ " or " ~ partition ~ " is null") -%}
    {%- if outside.columns[0].values()[0] > 0 -%}
      {{ exceptions.raise_compiler_error(
          "flower: model " ~ model.name ~ " produced " ~ outside.columns[0].values()[0]
          ~ " row(s) whose " ~ partition_column ~ " is null or outside the window ["
          ~ flower_window_bound('start') ~ ", " ~ flower_window_bound('end')
          ~ "); the window must cover whole partitions of the model's grain and the model "
          ~ "must derive " ~ partition_column ~ " from its window. Nothing was written.") }}
    {%- endif -%}
  {%- endif -%}
  {%- if flower_is_audited(model) -%}
    {{ flower_write_audit_sql(target, source, dest_columns) }}
  {%- else -%}
    {%- set columns = get_quoted_csv(dest_columns | map(attribute='name')) -%}
  delete from {{ target }}
  where {{ flower_in_window(partition) }};

  insert into {{ target }} ({{ columns }})
  select {{ columns }} from {{ source }}
  {%- endif %}
{%- endmacro %}
