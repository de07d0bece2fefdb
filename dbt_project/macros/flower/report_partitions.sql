{#-
  Post-hook of every model: report what the run wrote to each partition of a partitioned model.

  One grouped query over the run's window gives, per partition value, the row count and an
  order-independent hash of the rows. It is logged as `flower-partitions {json}`; flower-dagster
  reads it from dbt's log and turns it into each partition's data version, so a re-run that
  writes the same rows keeps the same version (nothing downstream becomes stale) and a repair
  that changes them gets a new one. Unpartitioned models report nothing.
-#}
{% macro flower_report_partitions() -%}
  {%- if execute and model.resource_type == 'model'
        and model.config.materialized == 'incremental' -%}
    {%- set flower_meta = (model.config.meta or {}).get('flower') or {} -%}
    {%- set partition_column = flower_meta.get('partition_column') -%}
    {%- if flower_meta.get('partition') and partition_column -%}
      {%- set partition = adapter.quote(partition_column) -%}
      {#- The rows this run will publish: its audit relation's, when it wrote one. -#}
      {%- set audit = flower_audit_relation(this) -%}
      {%- set written = audit if flower_is_audited(model) and flower_relation_exists(audit) else this -%}
      {%- set result = run_query(
          "select cast(" ~ partition ~ " as " ~ dbt.type_string() ~ ") as partition_value, "
          ~ "count(*) as row_count, "
          ~ "cast(" ~ adapter.dispatch('flower_row_hash_sum')('flower_rows') ~ " as "
          ~ dbt.type_string() ~ ") as content_hash "
          ~ "from " ~ written ~ " as flower_rows "
          ~ "where " ~ flower_in_window(partition) ~ " "
          ~ "group by cast(" ~ partition ~ " as " ~ dbt.type_string() ~ ")") -%}
      {%- set partitions = {} -%}
      {%- for row in result.rows -%}
        {%- do partitions.update({row[0]: [row[1] | int, row[2] | string]}) -%}
      {%- endfor -%}
      {%- do log("flower-partitions " ~ tojson({
            "unique_id": model.unique_id,
            "window": [flower_window_bound('start'), flower_window_bound('end')],
            "partitions": partitions}), info=True) -%}
    {%- endif -%}
  {%- endif -%}
{%- endmacro %}

{#- The sum of the rows' hashes: independent of row order, and duplicates count. -#}
{% macro default__flower_row_hash_sum(alias) -%}
  sum(cast(hash({{ alias }}) as hugeint))
{%- endmacro %}

{% macro spark__flower_row_hash_sum(alias) -%}
  sum(cast(xxhash64({{ alias }}.*) as decimal(38, 0)))
{%- endmacro %}
