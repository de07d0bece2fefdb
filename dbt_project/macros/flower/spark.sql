{#-
  Spark: the same models, written Hive-style.

  A partitioned model's table is `partitioned by` its `meta.flower.partition_column` (unless the
  model sets dbt-spark's own `partition_by`), and a run replaces just the partitions it writes:
  `insert overwrite ... partition (col)` with partitionOverwriteMode=dynamic (profiles.yml).
  That is why the partition column must be the last column of the select (`flower lint` FL002).
-#}
{% macro spark__partition_cols(label, required=false) %}
  {%- set cols = config.get('partition_by', validator=validation.any[list, basestring]) -%}
  {%- if cols is none -%}
    {%- set flower_meta = (config.get('meta') or {}).get('flower') or {} -%}
    {%- if flower_meta.get('partition') and flower_meta.get('partition_column')
          and config.get('materialized') == 'incremental' -%}
      {%- set cols = [flower_meta.get('partition_column')] -%}
    {%- endif -%}
  {%- endif -%}
  {%- if cols is not none %}
    {%- if cols is string -%}
      {%- set cols = [cols] -%}
    {%- endif -%}
    {{ label }} (
    {%- for item in cols -%}
      {{ item }}
      {%- if not loop.last -%},{%- endif -%}
    {%- endfor -%}
    )
  {%- endif %}
{%- endmacro -%}

{#-
  The demo's raw tables on Spark: `flower demo load` writes them as Parquet files under
  $FLOWER_SPARK_DIR/raw/<table>/ (run it first); this on-run-start hook registers them as
  external tables of database `raw` and refreshes them, so an edited day is seen. Other
  engines: nothing.
-#}
{% macro flower_spark_raw_tables() -%}
  {%- if execute and target.type == 'spark' -%}
    {%- set base = env_var('FLOWER_SPARK_DIR', 'state/spark') -%}
    {%- do run_query("create database if not exists raw") -%}
    {%- for table in ['users', 'events', 'orders', 'payments'] -%}
      {%- do run_query("create table if not exists raw." ~ table
            ~ " using parquet location '" ~ base ~ "/raw/" ~ table ~ "'") -%}
      {%- do run_query("refresh table raw." ~ table) -%}
    {%- endfor -%}
  {%- endif -%}
{%- endmacro %}
