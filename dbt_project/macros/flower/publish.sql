{#-
  Write, audit, publish: a partition run's rows become visible only once its tests pass.

  write   The `partition_overwrite` strategy (partition_overwrite.sql) does not touch the model's
          table: it writes the window's new rows into the model's audit relation, a table of the
          same name in schema `<schema>_flower_audit`.
  audit   In a `dbt build`, the tests attached to the model read that audit relation instead of
          the table (get_where_subquery.sql), over the run's window.
  publish Only when they passed: delete the window from the table and insert the audit's rows
          (one transaction on DuckDB), then drop the audit relation. A model is published
          either by the pre-hook of a model built after it in the same invocation (dbt build
          runs a model only when the tests of its parents passed, so a daily roll-up reads its
          parent's published day) or by the on-run-end hook, which publishes every model that
          succeeded and none of whose tests failed or errored.

  A failed test, a dbt error or a killed dbt therefore leaves the table as it was; the rejected
  rows stay in the audit relation, for a person to look at, until the model's next run. A range
  (a backfill's window) is audited and published as one: one failing row rejects the range.
-#}

{#- The audit relation of a model's table. -#}
{% macro flower_audit_relation(relation) -%}
  {{ return(relation.incorporate(path={"schema": relation.schema ~ "_flower_audit"},
                                 type="table")) }}
{%- endmacro %}

{#- Whether a model node (a graph node or `model`) is published through an audit relation. -#}
{% macro flower_is_audited(node) -%}
  {%- set flower_meta = (node.config.meta or {}).get('flower') or {} -%}
  {{ return(node.resource_type == 'model' and node.config.materialized == 'incremental'
            and node.config.incremental_strategy in ('partition_overwrite', 'insert_overwrite')
            and flower_meta.get('partition') and flower_meta.get('partition_column')
            and flower_publishes()) }}
{%- endmacro %}

{#- Whether the project publishes: its on-run-end runs `flower_publish_audited`. A project that
    copies the macros without the hooks keeps writing its table directly, rather than writing
    audit relations nobody publishes. -#}
{% macro flower_publishes() -%}
  {%- for unique_id, node in graph.nodes.items()
        if unique_id.startswith('operation.') and 'on-run-end' in unique_id
           and 'flower_publish_audited' in node.raw_code -%}
    {{ return(true) }}
  {%- endfor -%}
  {{ return(false) }}
{%- endmacro %}

{% macro flower_node_relation(node) -%}
  {{ return(api.Relation.create(database=node.database, schema=node.schema,
                                identifier=node.alias or node.name, type="table")) }}
{%- endmacro %}

{#- Whether a relation exists, asked of the warehouse: the audit relations are created and dropped
    by plain SQL, which dbt's relation cache does not see. -#}
{% macro flower_relation_exists(relation) -%}
  {{ return(adapter.dispatch('flower_relation_exists')(relation)) }}
{%- endmacro %}

{% macro default__flower_relation_exists(relation) -%}
  {%- set found = run_query(
      "select count(*) from information_schema.tables where table_schema = '"
      ~ relation.schema ~ "' and table_name = '" ~ relation.identifier ~ "'"
      ~ (" and table_catalog = '" ~ relation.database ~ "'" if relation.database else "")) -%}
  {{ return(found.columns[0].values()[0] > 0) }}
{%- endmacro %}

{% macro spark__flower_relation_exists(relation) -%}
  {%- if run_query("show databases like '" ~ relation.schema ~ "'").rows | length == 0 -%}
    {{ return(false) }}
  {%- endif -%}
  {%- set found = run_query("show tables in " ~ relation.schema
                            ~ " like '" ~ relation.identifier ~ "'") -%}
  {{ return(found.rows | length > 0) }}
{%- endmacro %}

{#- The write step: the window's new rows into the audit relation, which is replaced. -#}
{% macro flower_write_audit_sql(target, source, dest_columns) -%}
  {{ return(adapter.dispatch('flower_write_audit_sql')(target, source, dest_columns)) }}
{%- endmacro %}

{% macro default__flower_write_audit_sql(target, source, dest_columns) -%}
  {%- set audit = flower_audit_relation(target) -%}
  {%- set columns = get_quoted_csv(dest_columns | map(attribute='name')) -%}
  create schema if not exists {{ audit.without_identifier() }};
  drop table if exists {{ audit }};
  create table {{ audit }} as select {{ columns }} from {{ source }};
{%- endmacro %}

{#- Spark runs one statement at a time: the preparation first, the write is the statement. -#}
{% macro spark__flower_write_audit_sql(target, source, dest_columns) -%}
  {%- set audit = flower_audit_relation(target) -%}
  {%- set columns = dest_columns | map(attribute='quoted') | join(', ') -%}
  {%- do run_query("create database if not exists " ~ audit.schema) -%}
  {%- do run_query("drop table if exists " ~ audit) -%}
  create table {{ audit }} using parquet as select {{ columns }} from {{ source }}
{%- endmacro %}

{#- dbt-spark's `insert_overwrite` strategy, for an audited model: write its audit relation
    instead (the publish overwrites the partitions). Other models: dbt-spark's own SQL. -#}
{% macro get_insert_overwrite_sql(source_relation, target_relation, existing_relation) -%}
  {%- if flower_is_audited(model) -%}
    {{ return(flower_write_audit_sql(target_relation, source_relation,
                                     adapter.get_columns_in_relation(target_relation))) }}
  {%- endif -%}
  {{ return(dbt_spark.get_insert_overwrite_sql(source_relation, target_relation, existing_relation)) }}
{%- endmacro %}

{#- A partitioned model's audit relation from an earlier, unfinished run must never be published
    with this one's window: its own pre-hook drops it (a first build creates the table directly
    and writes no audit relation). -#}
{% macro flower_drop_stale_audit() -%}
  {%- if execute and flower_is_audited(model) -%}
    {%- set audit = flower_audit_relation(this) -%}
    {%- if flower_relation_exists(audit) -%}
      {%- do run_query("drop table " ~ audit) -%}
    {%- endif -%}
  {%- endif -%}
{%- endmacro %}

{#- Pre-hook of every model: drop its own stale audit relation, and publish its audited parents
    built earlier in this invocation (they passed their tests, or dbt would not run this model). -#}
{% macro flower_publish_parents() -%}
  {%- if execute and model.resource_type == 'model' -%}
    {%- do flower_drop_stale_audit() -%}
    {%- for parent_id in model.depends_on.nodes -%}
      {%- set parent = graph.nodes.get(parent_id) -%}
      {%- if parent and parent_id in selected_resources and flower_is_audited(parent) -%}
        {%- do flower_publish(flower_node_relation(parent), parent.config.meta.flower.partition_column) -%}
      {%- endif -%}
    {%- endfor -%}
  {%- endif -%}
{%- endmacro %}

{#- on-run-end: publish every audited model that succeeded and whose tests all passed. -#}
{% macro flower_publish_audited(results) -%}
  {%- if execute -%}
    {%- set rejected = [] -%}
    {%- for result in results
          if result.node.resource_type == 'test' and result.status in ('fail', 'error') -%}
      {%- do rejected.append(result.node.attached_node) -%}
      {%- do rejected.extend(result.node.depends_on.nodes) -%}
    {%- endfor -%}
    {%- for result in results
          if result.node.resource_type == 'model' and result.status == 'success'
             and result.node.unique_id not in rejected and flower_is_audited(result.node) -%}
      {%- do flower_publish(flower_node_relation(result.node),
                            result.node.config.meta.flower.partition_column) -%}
    {%- endfor -%}
  {%- endif -%}
{%- endmacro %}

{#- The publish step: the audit relation's rows replace the window's rows of the table. Nothing
    when there is no audit relation (already published, or the model created its table). -#}
{% macro flower_publish(target, partition_column) -%}
  {%- set audit = flower_audit_relation(target) -%}
  {%- if flower_relation_exists(audit) -%}
    {%- do log("flower: publishing " ~ target ~ " from " ~ audit, info=False) -%}
    {%- do adapter.dispatch('flower_publish_sql')(target, audit, partition_column) -%}
  {%- endif -%}
{%- endmacro %}

{#- DuckDB (and engines with transactional delete): delete the window and insert the audited
    rows in one transaction, so a reader sees the old rows or the new ones, never a mix. -#}
{% macro default__flower_publish_sql(target, audit, partition_column) -%}
  {%- set columns = get_quoted_csv(adapter.get_columns_in_relation(audit) | map(attribute='name')) -%}
  {%- call statement('flower_publish', auto_begin=True) -%}
    delete from {{ target }} where {{ flower_in_window(adapter.quote(partition_column)) }};
    insert into {{ target }} ({{ columns }}) select {{ columns }} from {{ audit }};
    drop table {{ audit }};
  {%- endcall -%}
  {%- do adapter.commit() -%}
{%- endmacro %}

{#- Spark (Hive-style partitions, no transactional delete): drop the table's partitions of the
    window that the audit relation has no rows for (an emptied day must end up empty: dynamic
    overwrite writes no partition for it), then overwrite the audit's partitions (dynamic:
    each partition is replaced as a whole). -#}
{% macro spark__flower_publish_sql(target, audit, partition_column) -%}
  {%- set column = adapter.quote(partition_column) -%}
  {%- set emptied = run_query(
      "select distinct cast(" ~ column ~ " as string) from " ~ target
      ~ " where " ~ flower_in_window(column)
      ~ " and " ~ column ~ " not in (select " ~ column ~ " from " ~ audit ~ ")") -%}
  {%- for row in emptied.rows -%}
    {%- do run_query("alter table " ~ target ~ " drop if exists partition ("
                     ~ column ~ " = '" ~ row[0] ~ "')") -%}
  {%- endfor -%}
  {%- set columns = adapter.get_columns_in_relation(target) | map(attribute='quoted') | join(', ') -%}
  {%- do run_query("insert overwrite table " ~ target ~ " partition (" ~ column ~ ") select "
                   ~ columns ~ " from " ~ audit) -%}
  {%- do run_query("drop table " ~ audit) -%}
{%- endmacro %}
