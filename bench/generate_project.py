"""Generate a synthetic flower dbt project of N models, for benchmarks.

The project copies the flower macros (window, `partition_overwrite`, write-audit-publish) from the
demo project, and from its dbt_project.yml the incremental strategy and the publish hooks (see
`product_settings`; `--direct` leaves the hooks out), and lays out a layered DAG over one raw
source table:

- staging (~10%): views over the raw table, one row per event, unpartitioned;
- daily (~50%): incremental, one row per event, reading 1-3 staging or earlier daily models,
  split into `DAILY_LAYERS` layers so every top-layer model has a chain of that depth;
- weekly (~20%) and monthly (~10%): incremental roll-ups of 1-3 daily models;
- tables (~10%): unpartitioned aggregates of 1-3 models of any kind.

Every partitioned model reads its parents through `flower_in_window(<column>)`, puts its
partition column last and declares `meta.flower.{partition, partition_column}` in its own
properties file. Every model has one or two data tests.

Row-level models (staging and daily) carry `amount = scale * raw.amount + offset`, with
`scale` and `offset` known from the plan, so a benchmark can check a partition run against a
direct query of the raw table (`expected_rows_sql`).

The output depends only on (n_models, seed): `plan_project` is pure and `generate_project`
writes exactly what the plan says.

    python -m bench.generate_project --models 1000 --out /tmp/flower-bench [--seed 1] [--direct]
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from pathlib import Path
from typing import Any

import yaml

REPO_ROOT = Path(__file__).resolve().parents[1]
DEMO_PROJECT = REPO_ROOT / "dbt_project"

PROJECT_NAME = "flower_bench"
# The on-run-end step of dbt_project/dbt_project.yml that publishes audited partitions.
PUBLISH_STEP = "flower_publish_audited"
RAW_SCHEMA = "raw"
RAW_TABLE = "events"
RAW_COLUMNS = ("id", "customer_id", "category", "amount", "event_ts")
CATEGORIES = ("books", "garden", "music", "toys")
DAILY_LAYERS = 4
MAX_PARENTS = 3


class Kind(StrEnum):
    STAGING = "staging"
    DAILY = "daily"
    WEEKLY = "weekly"
    MONTHLY = "monthly"
    TABLE = "table"


@dataclass(frozen=True)
class KindLayout:
    share: float  # of all models; TABLE takes the remainder
    folder: str
    prefix: str
    grain: str | None  # meta.flower.partition (a flower_dagster Grain value)
    partition_column: str | None
    tests: tuple[tuple[str, str], tuple[str, str]]  # (column, test): the first always, 2nd maybe


LAYOUT: dict[Kind, KindLayout] = {
    Kind.STAGING: KindLayout(
        0.1, "staging", "stg", None, None, (("id", "not_null"), ("id", "unique"))
    ),
    Kind.DAILY: KindLayout(
        0.5, "daily", "day", "daily", "event_ts", (("event_ts", "not_null"), ("id", "unique"))
    ),
    Kind.WEEKLY: KindLayout(
        0.2,
        "weekly",
        "wk",
        "weekly",
        "week_start",
        (("week_start", "not_null"), ("customer_id", "not_null")),
    ),
    Kind.MONTHLY: KindLayout(
        0.1,
        "monthly",
        "mon",
        "monthly",
        "month_start",
        (("month_start", "not_null"), ("category", "not_null")),
    ),
    Kind.TABLE: KindLayout(
        0.1, "tables", "tbl", None, None, (("category", "not_null"), ("category", "unique"))
    ),
}


@dataclass(frozen=True)
class ModelSpec:
    name: str
    kind: Kind
    layer: int  # staging 0, daily 1..DAILY_LAYERS, roll-ups and tables above
    parents: tuple[str, ...]  # model names; staging reads the raw source
    offset: int  # added to `amount`
    tests: tuple[tuple[str, str], ...]
    amount_scale: int | None = None  # row-level models: amount = scale * raw.amount + ...
    amount_offset: int | None = None  # ... + this

    @property
    def layout(self) -> KindLayout:
        return LAYOUT[self.kind]

    @property
    def partitioned(self) -> bool:
        return self.layout.grain is not None


def kind_counts(n_models: int) -> dict[Kind, int]:
    """How many models of each kind a project of `n_models` has (at least one staging)."""
    if n_models < 2:
        raise ValueError("a project needs at least 2 models (one staging, one daily)")
    counts = {kind: round(n_models * layout.share) for kind, layout in LAYOUT.items()}
    counts[Kind.STAGING] = max(1, counts[Kind.STAGING])
    counts[Kind.DAILY] = max(1, counts[Kind.DAILY])
    others = sum(n for kind, n in counts.items() if kind is not Kind.TABLE)
    if others > n_models:  # tiny projects: trim roll-ups first
        for kind in (Kind.MONTHLY, Kind.WEEKLY):
            cut = min(counts[kind], others - n_models)
            counts[kind] -= cut
            others -= cut
    counts[Kind.TABLE] = n_models - others
    return counts


def plan_project(n_models: int, seed: int = 1) -> list[ModelSpec]:
    """The models of the project, parents before children (pure and deterministic)."""
    rng = random.Random(seed)
    counts = kind_counts(n_models)
    width = max(4, len(str(n_models)))
    specs: list[ModelSpec] = []
    by_name: dict[str, ModelSpec] = {}

    def name(kind: Kind, index: int) -> str:
        return f"{LAYOUT[kind].prefix}_{index:0{width}d}"

    def tests(kind: Kind) -> tuple[tuple[str, str], ...]:
        first, second = LAYOUT[kind].tests
        return (first, second) if rng.random() < 0.5 else (first,)

    def add(spec: ModelSpec) -> None:
        specs.append(spec)
        by_name[spec.name] = spec

    def pick_parents(first_pool: Sequence[str], other_pool: Sequence[str]) -> tuple[str, ...]:
        first = rng.choice(first_pool)
        others = [p for p in other_pool if p != first]
        extra = min(rng.randint(1, MAX_PARENTS) - 1, len(others))
        return (first, *sorted(rng.sample(others, extra)))

    for i in range(1, counts[Kind.STAGING] + 1):
        offset = rng.randint(0, 9)
        add(
            ModelSpec(
                name(Kind.STAGING, i),
                Kind.STAGING,
                0,
                (),
                offset,
                tests(Kind.STAGING),
                amount_scale=1,
                amount_offset=offset,
            )
        )

    layers: list[list[str]] = [[s.name for s in specs]]
    n_daily = counts[Kind.DAILY]
    n_layers = min(DAILY_LAYERS, n_daily)
    for i in range(1, n_daily + 1):
        layer = 1 + (i - 1) * n_layers // n_daily
        if layer == len(layers):
            layers.append([])
        below = [m for lower in layers[:layer] for m in lower]
        parents = pick_parents(layers[layer - 1], below)
        offset = rng.randint(0, 9)
        scale = sum(by_name[p].amount_scale or 0 for p in parents)
        base = sum(by_name[p].amount_offset or 0 for p in parents) + offset
        spec = ModelSpec(
            name(Kind.DAILY, i),
            Kind.DAILY,
            layer,
            parents,
            offset,
            tests(Kind.DAILY),
            amount_scale=scale,
            amount_offset=base,
        )
        add(spec)
        layers[layer].append(spec.name)

    dailies = [m for layer in layers[1:] for m in layer]
    for kind in (Kind.WEEKLY, Kind.MONTHLY):
        for i in range(1, counts[kind] + 1):
            parents = pick_parents(dailies, dailies)
            add(ModelSpec(name(kind, i), kind, n_layers + 1, parents, 0, tests(kind)))

    for i in range(1, counts[Kind.TABLE] + 1):
        earlier = [s.name for s in specs]
        parents = pick_parents(earlier, earlier)
        layer = 1 + max(by_name[p].layer for p in parents)
        add(ModelSpec(name(Kind.TABLE, i), Kind.TABLE, layer, parents, 0, tests(Kind.TABLE)))
    return specs


# --- rendering ---------------------------------------------------------------------------


def _window(column: str) -> str:
    return f"{{{{ flower_in_window('{column}') }}}}"


def _ref(model: str) -> str:
    return f"{{{{ ref('{model}') }}}}"


def render_sql(spec: ModelSpec) -> str:
    if spec.kind is Kind.STAGING:
        return (
            "select\n    id,\n    customer_id,\n    category,\n"
            f"    amount + {spec.offset} as amount,\n    event_ts\n"
            f"from {{{{ source('{RAW_SCHEMA}', '{RAW_TABLE}') }}}}\n"
        )
    if spec.kind is Kind.DAILY:
        return _render_daily(spec)
    if spec.kind in (Kind.WEEKLY, Kind.MONTHLY):
        return _render_rollup(spec)
    return _render_table(spec)


def _render_daily(spec: ModelSpec) -> str:
    first, *others = spec.parents
    ctes = [
        f"{first} as (\n    select id, customer_id, category, amount, event_ts\n"
        f"    from {_ref(first)}\n    where {_window('event_ts')}\n)"
    ]
    ctes += [
        f"{p} as (\n    select id, amount\n    from {_ref(p)}\n    where {_window('event_ts')}\n)"
        for p in others
    ]
    amount = " + ".join([f"{p}.amount" for p in spec.parents] + [str(spec.offset)])
    cte_block = ",\n\n".join(ctes)
    joins = "".join(f"\ninner join {p} on {p}.id = {first}.id" for p in others)
    return (
        "{{ config(materialized='incremental') }}\n\n"
        f"with {cte_block}\n\n"
        f"select\n    {first}.id,\n    {first}.customer_id,\n    {first}.category,\n"
        f"    {amount} as amount,\n    {first}.event_ts\n"
        f"from {first}{joins}\n"
    )


def _render_rollup(spec: ModelSpec) -> str:
    unit = "week" if spec.kind is Kind.WEEKLY else "month"
    column = spec.layout.partition_column
    reads = "\n\n    union all\n\n".join(
        f"    select customer_id, category, amount, event_ts\n    from {_ref(p)}\n"
        f"    where {_window('event_ts')}"
        for p in spec.parents
    )
    bucket = f"cast(date_trunc('{unit}', event_ts) as timestamp)"
    return (
        "{{ config(materialized='incremental') }}\n\n"
        f"with daily_events as (\n{reads}\n)\n\n"
        "select\n    customer_id,\n    category,\n    sum(amount) as amount,\n"
        f"    count(*) as n_events,\n    {bucket} as {column}\n"
        f"from daily_events\ngroup by customer_id, category, {bucket}\n"
    )


def _render_table(spec: ModelSpec) -> str:
    reads = "\n\n    union all\n\n".join(
        f"    select category, amount\n    from {_ref(p)}" for p in spec.parents
    )
    return (
        f"with parent_amounts as (\n{reads}\n)\n\n"
        "select\n    category,\n    sum(amount) as amount,\n    count(*) as n_rows\n"
        "from parent_amounts\ngroup by category\n"
    )


def render_properties(spec: ModelSpec) -> str:
    lines = ["version: 2", "", "models:", f"  - name: {spec.name}"]
    layout = spec.layout
    if layout.grain is not None:
        lines += [
            "    config:",
            "      meta:",
            "        flower:",
            f"          partition: {layout.grain}",
            f"          partition_column: {layout.partition_column}",
        ]
    lines.append("    columns:")
    by_column: dict[str, list[str]] = {}
    for column, test in spec.tests:
        by_column.setdefault(column, []).append(test)
    for column, column_tests in by_column.items():
        lines += [f"      - name: {column}", "        data_tests:"]
        lines += [f"          - {test}" for test in column_tests]
    return "\n".join(lines) + "\n"


def product_settings(demo_project: Path = DEMO_PROJECT, publish: bool = True) -> dict[str, Any]:
    """What the generated project takes from the product's own dbt_project.yml, read from it
    (never restated here): the models' `+incremental_strategy` and, with `publish`, the write,
    audit, publish wiring of docs/publish.md (the `flower_publish_audited` on-run-end step and
    the `flower_publish_parents` pre-hook). Without them the same macros write the table
    directly: the stock dbt way."""
    path = demo_project / "dbt_project.yml"
    project = yaml.safe_load(path.read_text())
    models = next(iter(project.get("models", {}).values()), {})
    wanted: dict[str, Any] = {"+incremental_strategy": models.get("+incremental_strategy")}
    hooks: dict[str, Any] = {}
    if publish:
        hooks["on-run-end"] = [
            step for step in project.get("on-run-end", []) if PUBLISH_STEP in str(step)
        ]
        wanted["+pre-hook"] = models.get("+pre-hook")
    missing = [key for key, value in {**wanted, **hooks}.items() if not value]
    if missing:
        raise ValueError(f"{path} has no {', '.join(missing)}: the bench copies them from it")
    return {**hooks, "models": wanted}


def render_dbt_project(demo_project: Path = DEMO_PROJECT, publish: bool = True) -> str:
    settings = product_settings(demo_project, publish)
    project: dict[str, Any] = {
        "name": PROJECT_NAME,
        "version": "1.0.0",
        "config-version": 2,
        "profile": PROJECT_NAME,
        "model-paths": ["models"],
        "macro-paths": ["macros"],
        "clean-targets": ["target"],
        **{key: value for key, value in settings.items() if key != "models"},
        "models": {
            PROJECT_NAME: {
                **settings["models"],
                LAYOUT[Kind.STAGING].folder: {"+materialized": "view"},
                LAYOUT[Kind.TABLE].folder: {"+materialized": "table"},
            }
        },
    }
    return yaml.safe_dump(project, sort_keys=False, width=200)


PROFILES_YML = f"""\
{PROJECT_NAME}:
  target: duckdb
  outputs:
    duckdb:
      type: duckdb
      path: "{{{{ env_var('FLOWER_DUCKDB_PATH', 'bench.duckdb') }}}}"
      schema: main
      threads: 1
"""

SOURCES_YML = f"""\
version: 2

sources:
  - name: {RAW_SCHEMA}
    schema: {RAW_SCHEMA}
    tables:
      - name: {RAW_TABLE}
        columns:
          - name: event_ts
"""


def generate_project(
    out_dir: Path,
    n_models: int,
    seed: int = 1,
    demo_project: Path = DEMO_PROJECT,
    publish: bool = True,
) -> dict[str, int]:
    """Write the project to `out_dir` and return its number of models per kind.

    With `publish` (the default) it carries flower-dagster's write, audit, publish wiring as the
    product ships it; without, the same models write their tables directly.
    Generated folders (`models`, `macros`) are replaced; anything else in `out_dir` is kept.
    """
    specs = plan_project(n_models, seed)
    out_dir.mkdir(parents=True, exist_ok=True)
    for generated in ("models", "macros"):
        shutil.rmtree(out_dir / generated, ignore_errors=True)
    shutil.copytree(demo_project / "macros" / "flower", out_dir / "macros" / "flower")
    (out_dir / "dbt_project.yml").write_text(render_dbt_project(demo_project, publish))
    (out_dir / "profiles.yml").write_text(PROFILES_YML)
    models = out_dir / "models"
    for layout in LAYOUT.values():
        (models / layout.folder).mkdir(parents=True)
    (models / "__sources.yml").write_text(SOURCES_YML)
    for spec in specs:
        folder = models / spec.layout.folder
        (folder / f"{spec.name}.sql").write_text(render_sql(spec))
        (folder / f"{spec.name}.yml").write_text(render_properties(spec))
    counts = {kind.value: 0 for kind in Kind}
    for spec in specs:
        counts[spec.kind.value] += 1
    return counts


# --- data --------------------------------------------------------------------------------


def raw_events_sql(start: datetime, days: int, rows_per_day: int) -> str:
    """DuckDB SQL that (re)creates the raw table: `rows_per_day` evenly spaced events a day."""
    if not 0 < rows_per_day <= 86_400:
        raise ValueError("rows_per_day must be between 1 and 86400")
    step = 86_400 // rows_per_day
    categories = ", ".join(f"'{c}'" for c in CATEGORIES)
    return (
        f"create schema if not exists {RAW_SCHEMA};\n"
        f"create or replace table {RAW_SCHEMA}.{RAW_TABLE} as\n"
        "select\n"
        "    i as id,\n"
        "    (i * 7919) % 500 as customer_id,\n"
        f"    [{categories}][1 + i % {len(CATEGORIES)}] as category,\n"
        "    (i * 104729) % 10000 + 1 as amount,\n"
        f"    timestamp '{start:%Y-%m-%d %H:%M:%S}' + to_seconds(i * {step}) as event_ts\n"
        f"from range({days * rows_per_day}) as t(i);\n"
    )


def expected_rows_sql(spec: ModelSpec, start: str | None = None, end: str | None = None) -> str:
    """A direct query of the raw table giving a row-level model's rows in [start, end)."""
    if spec.amount_scale is None or spec.amount_offset is None:
        raise ValueError(f"{spec.name} is not a row-level model")
    where = f"\nwhere event_ts >= timestamp '{start}' and event_ts < timestamp '{end}'"
    return (
        "select id, customer_id, category, "
        f"amount * {spec.amount_scale} + {spec.amount_offset} as amount, event_ts\n"
        f"from {RAW_SCHEMA}.{RAW_TABLE}" + (where if start and end else "")
    )


def ancestors(specs: Sequence[ModelSpec], model: str) -> set[str]:
    by_name = {s.name: s for s in specs}
    seen: set[str] = set()
    todo = list(by_name[model].parents)
    while todo:
        name = todo.pop()
        if name not in seen:
            seen.add(name)
            todo.extend(by_name[name].parents)
    return seen


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", type=int, required=True, help="number of models")
    parser.add_argument("--out", type=Path, required=True, help="project folder to write")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--direct", action="store_true", help="without the publish hooks: tables written directly"
    )
    args = parser.parse_args(argv)
    counts = generate_project(args.out, args.models, args.seed, publish=not args.direct)
    print(json.dumps({"out": str(args.out), "models": args.models, "counts": counts}))


if __name__ == "__main__":
    main()
