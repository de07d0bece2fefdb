"""The code location (`dagster dev`, `workspace.yaml`): `defs`, gathered in `defs/`.

The process's garbage-collector thresholds are raised first (`flower_dagster/collector.py`,
`FLOWER_GC_THRESHOLDS`): building thousands of assets, checks and their snapshot makes a large
long-lived heap that CPython's default thresholds walk again and again, a quarter of the load
at 3,000 models (docs/benchmarks.md, optimisation (12)).
"""

from flower_dagster.collector import tune_collector

tune_collector()

from flower_dagster.defs import build_definitions  # noqa: E402  (after the collector is tuned)

defs = build_definitions()
