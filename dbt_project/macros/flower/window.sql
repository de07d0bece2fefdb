{#-
  The partition window of the current run.

  flower-dagster hands each run its window through two environment variables,
  FLOWER_WINDOW_START and FLOWER_WINDOW_END ('YYYY-MM-DD HH:MM:SS', wall-clock time in the
  partition timezone, end exclusive). They are read only while executing (`execute`), never
  while parsing, so dbt's partial parse stays valid from one partition run to the next
  (a `--vars` change would make dbt re-parse the whole project on every run).

  By hand, either form works:
    FLOWER_WINDOW_START='2024-01-09 00:00:00' FLOWER_WINDOW_END='2024-01-10 00:00:00' dbt build -s fct_orders
    dbt build -s fct_orders --vars '{flower_window_start: "2024-01-09", flower_window_end: "2024-01-10"}'
  With no window at all a model covers its whole history (a full rebuild).
-#}

{% macro flower_window_bound(name) -%}
  {%- if not execute -%}
    {{ return(none) }}
  {%- endif -%}
  {%- set value = env_var('FLOWER_WINDOW_' ~ name | upper, '') | trim -%}
  {%- if not value -%}
    {%- set value = (var('flower_window_' ~ name, '') or '') | string | trim -%}
  {%- endif -%}
  {%- if not value -%}
    {{ return(none) }}
  {%- endif -%}
  {%- do flower_check_window(value) -%}
  {%- if not modules.re.match('^\d{4}-\d{2}-\d{2}( \d{2}:\d{2}(:\d{2})?)?$', value) -%}
    {{ exceptions.raise_compiler_error(
        "flower: window " ~ name ~ " '" ~ value ~ "' is not a date or timestamp; "
        ~ "expected 'YYYY-MM-DD' or 'YYYY-MM-DD HH:MM:SS'") }}
  {%- endif -%}
  {{ return(value) }}
{%- endmacro %}

{#- Checks made once a window is known: a full refresh rebuilds the whole table from the select,
    so with a window it would keep only that window and lose the rest of the history. -#}
{% macro flower_check_window(value) -%}
  {%- if value and flags.FULL_REFRESH and model.config.materialized == 'incremental' -%}
    {{ exceptions.raise_compiler_error(
        "flower: model " ~ model.name ~ " was asked for --full-refresh with a partition window; "
        ~ "a full refresh rebuilds the whole table, so run it without FLOWER_WINDOW_START/END "
        ~ "(or drop --full-refresh to replace only the window)") }}
  {%- endif -%}
{%- endmacro %}

{% macro flower_window_start() -%}
  {%- set value = flower_window_bound('start') -%}
  {{- "cast('" ~ value ~ "' as timestamp)" if value else "" -}}
{%- endmacro %}

{% macro flower_window_end() -%}
  {%- set value = flower_window_bound('end') -%}
  {{- "cast('" ~ value ~ "' as timestamp)" if value else "" -}}
{%- endmacro %}

{#- A predicate that keeps the rows of `column` inside the window (true when there is none). -#}
{% macro flower_in_window(column) -%}
  {%- set start = flower_window_bound('start') -%}
  {%- set end = flower_window_bound('end') -%}
  {%- if start and end -%}
    ({{ column }} >= cast('{{ start }}' as timestamp) and {{ column }} < cast('{{ end }}' as timestamp))
  {%- elif start or end -%}
    {{ exceptions.raise_compiler_error("flower: a window needs both a start and an end") }}
  {%- else -%}
    (1 = 1)
  {%- endif -%}
{%- endmacro %}
