"""The values a preview is made of: what blocks a partition, each impacted partition, the whole."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from dagster import AssetKey, PartitionsDefinition

# An impacted partition that waits for an impacted upstream partition which is blocked itself.
BLOCKED = "blocked"
# An impacted partition whose latest run was canceled (or deleted) before it built: the rule
# requests it again by itself once it has seen it settled, so it does not block its descendants.
CANCELED = "canceled, the rule requests it again"


@dataclass(frozen=True, order=True)
class Blocker:
    """An upstream partition (or the partition itself) that holds an impacted partition back."""

    asset: str
    partition: str | None
    problem: str  # missing | failed | in progress (inputs.Problem) | blocked | CANCELED

    def __str__(self) -> str:
        where = f"{self.asset} {self.partition}" if self.partition else self.asset
        return f"{where} ({self.problem})"


@dataclass(frozen=True)
class ImpactedPartition:
    asset: AssetKey
    partition: str
    # None when unknown (no Dagster instance); empty when nothing blocks it.
    blockers: tuple[Blocker, ...] | None = None

    @property
    def blocked(self) -> bool | None:
        return None if self.blockers is None else bool(self.blockers)


@dataclass(frozen=True)
class Impact:
    """The whole preview of one repair, ready to render."""

    model: AssetKey
    partitions: tuple[str, ...]
    impacted: tuple[ImpactedPartition, ...]
    # Descendants the rule does not re-run, with why (`unpartitioned`, `no automation condition`).
    not_rerun: tuple[tuple[AssetKey, str], ...] = ()
    # Downstream partitions that do not exist yet: their window has not ended.
    not_yet: tuple[tuple[AssetKey, tuple[str, ...]], ...] = ()
    # Why blockers are unknown (None when they were read from an instance).
    blockers_unknown: str | None = None
    grains: Mapping[AssetKey, str] = field(default_factory=dict)
    partitions_defs: Mapping[AssetKey, PartitionsDefinition | None] = field(default_factory=dict)
