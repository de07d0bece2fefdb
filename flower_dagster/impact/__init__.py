"""Impact preview: what a repair of some partitions re-runs downstream, and what blocks it now.

`flower impact fct_orders 2024-01-10` runs nothing. It walks the asset graph from the repaired
partitions the way the repair rule (`flower_dagster.automation`) will: along every edge to a
partitioned asset that carries an automation condition, through Dagster's own partition mapping
of that edge (a day reaches its week and its month, a week reaches every month it overlaps), and
on from there. Unpartitioned descendants are not re-run by the rule; they are listed apart.

For each partition reached it then asks the Dagster instance what would hold it back today, with
the source check's own words (`flower_dagster.inputs.input_problems`). The repaired partitions,
and the partitions the rule will re-run after them, count as healthy: a repair of a failed day
fixes that day. A partition is blocked by the OTHER partitions it reads that are missing, failed
or in progress, by itself being in progress, or — when every partition that would trigger it is
blocked — by those (`blocked`): it waits for them.

One concern per module: `graph` walks the partitions (pure), `selection` checks the model and
partitions as typed, `status` reads the instance, `blockers` decides what blocks what (pure),
`render` writes text and JSON, `preview` puts them together.
"""

from flower_dagster.impact.blockers import find_blockers
from flower_dagster.impact.graph import (
    impacted_partitions,
    not_rerun_descendants,
    not_yet_partitions,
)
from flower_dagster.impact.model import BLOCKED, CANCELED, Blocker, Impact, ImpactedPartition
from flower_dagster.impact.preview import preview, run_impact
from flower_dagster.impact.render import render_json, render_text
from flower_dagster.impact.selection import check_partitions, resolve_model
from flower_dagster.impact.status import instance_from_environment

__all__ = [
    "BLOCKED",
    "CANCELED",
    "Blocker",
    "Impact",
    "ImpactedPartition",
    "check_partitions",
    "find_blockers",
    "impacted_partitions",
    "instance_from_environment",
    "not_rerun_descendants",
    "not_yet_partitions",
    "preview",
    "render_json",
    "render_text",
    "resolve_model",
    "run_impact",
]
