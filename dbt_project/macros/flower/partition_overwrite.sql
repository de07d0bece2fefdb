{#-
  Incremental strategy `partition_overwrite`: replace exactly the run's partition window.

  Engines without a native insert-overwrite (DuckDB) delete the target's rows whose partition
  column lies in the window, then insert the new rows, in one transaction: re-running a
  partition is idempotent and a failed run leaves the previous rows in place.
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
  {%- set columns = get_quoted_csv(dest_columns | map(attribute='name')) -%}
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
  delete from {{ target }}
  where {{ flower_in_window(partition) }};

  insert into {{ target }} ({{ columns }})
  select {{ columns }} from {{ source }}
{%- endmacro %}
