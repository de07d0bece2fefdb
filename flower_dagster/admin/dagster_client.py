"""Dagster's GraphQL API on its internal address: launch, read and cancel partition backfills.

Only the admin service talks to Dagster; model authors never reach it. A backfill is an asset
backfill (`assetSelection` + `partitionNames`): with the assets' single-run backfill policy the
daemon runs the whole range as one run and one `dbt build`.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from flower_dagster.errors import FlowerError

# Tags on every backfill the admin launches (and on the runs Dagster makes of it).
LAUNCHED_BY_TAG = "flower/launched-by"
REASON_TAG = "flower/reason"
VIA_TAG = "flower/via"
VIA_ADMIN = "backfill-admin"
# The identity of the request that launched it (service.request_identity): an identical request
# finds the backfill it would duplicate.
REQUEST_TAG = "flower/request"

# Backfill statuses that will not change any more.
FINISHED = frozenset({"COMPLETED", "COMPLETED_SUCCESS", "COMPLETED_FAILED", "FAILED", "CANCELED"})

_LAUNCH = """
mutation Launch($params: LaunchBackfillParams!) {
  launchPartitionBackfill(backfillParams: $params) {
    __typename
    ... on LaunchBackfillSuccess { backfillId }
    ... on Error { message }
  }
}"""

_BACKFILL_FIELDS = """
    id status numPartitions timestamp endTimestamp title description
    tags { key value }
    assetSelection { path }
    assetBackfillData {
      assetBackfillStatuses {
        __typename
        ... on AssetPartitionsStatusCounts {
          assetKey { path }
          numPartitionsTargeted numPartitionsInProgress numPartitionsMaterialized
          numPartitionsFailed
        }
      }
      rootTargetedPartitions { partitionKeys ranges { start end } }
    }
"""

_BACKFILL = (
    """
query Backfill($id: String!) {
  partitionBackfillOrError(backfillId: $id) {
    __typename
    ... on PartitionBackfill {"""
    + _BACKFILL_FIELDS
    + """}
    ... on Error { message }
  }
}"""
)

_BACKFILLS = (
    """
query Backfills($limit: Int) {
  partitionBackfillsOrError(limit: $limit) {
    __typename
    ... on PartitionBackfills { results {"""
    + _BACKFILL_FIELDS
    + """} }
    ... on Error { message }
  }
}"""
)

_CANCEL = """
mutation Cancel($id: String!) {
  cancelPartitionBackfill(backfillId: $id) {
    __typename
    ... on CancelBackfillSuccess { backfillId }
    ... on Error { message }
  }
}"""

_REQUESTED = """
query Requested($limit: Int) {
  partitionBackfillsOrError(status: REQUESTED, limit: $limit) {
    __typename
    ... on PartitionBackfills { results { id tags { key value } } }
    ... on Error { message }
  }
}"""

_PARTITION_STATUSES = """
query Statuses($keys: [AssetKeyInput!]) {
  assetNodes(assetKeys: $keys) {
    assetKey { path }
    assetPartitionStatuses {
      __typename
      ... on TimePartitionStatuses { ranges { status startKey endKey } }
    }
  }
}"""


_BUILT = """
query Built($keys: [AssetKeyInput!]) {
  assetNodes(assetKeys: $keys) { assetKey { path } assetMaterializations(limit: 1) { timestamp } }
}"""


_STALE = """
query Stale($keys: [AssetKeyInput!], $partitions: [String!]) {
  assetNodes(assetKeys: $keys) { assetKey { path } staleStatusByPartition(partitions: $partitions) }
}"""


class DagsterUnavailable(FlowerError):
    """Dagster did not answer, or answered with an error."""


@dataclass(frozen=True)
class BackfillStatus:
    """A backfill as the admin reports it."""

    id: str
    status: str  # Dagster's BulkActionStatus: REQUESTED, COMPLETED_SUCCESS, ...
    models: tuple[str, ...]
    first: str | None
    last: str | None
    launched_by: str | None
    reason: str | None
    created: float
    ended: float | None
    targeted: int
    done: int
    failed: int
    in_progress: int
    tags: Mapping[str, str] = field(default_factory=dict)

    @property
    def finished(self) -> bool:
        return self.status in FINISHED

    @property
    def via_admin(self) -> bool:
        return self.tags.get(VIA_TAG) == VIA_ADMIN

    def as_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "status": self.status,
            "finished": self.finished,
            "models": list(self.models),
            "from": self.first,
            "to": self.last,
            "launched_by": self.launched_by,
            "reason": self.reason,
            "created": self.created,
            "ended": self.ended,
            "partitions": {
                "targeted": self.targeted,
                "done": self.done,
                "failed": self.failed,
                "in_progress": self.in_progress,
            },
        }


class DagsterClient:
    """A small GraphQL client; `url` is Dagster's internal GraphQL endpoint."""

    def __init__(self, url: str, timeout: float = 30.0) -> None:
        self.url = url
        self.timeout = timeout

    def query(self, text: str, variables: Mapping[str, Any] | None = None) -> dict[str, Any]:
        body = json.dumps({"query": text, "variables": dict(variables or {})}).encode()
        request = urllib.request.Request(
            self.url, data=body, headers={"Content-Type": "application/json"}, method="POST"
        )
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                payload = json.load(response)
        except urllib.error.HTTPError as error:
            detail = error.read().decode(errors="replace")[:300]
            raise DagsterUnavailable(
                f"Dagster at {self.url} answered {error.code}: {detail}"
            ) from None
        except (OSError, ValueError) as error:
            raise DagsterUnavailable(f"Dagster at {self.url} did not answer: {error}") from None
        if payload.get("errors"):
            messages = "; ".join(e.get("message", "?") for e in payload["errors"])
            raise DagsterUnavailable(f"Dagster's GraphQL API refused the query: {messages}")
        return payload["data"]

    def launch_backfill(
        self,
        asset: str,
        partition_keys: Sequence[str],
        tags: Mapping[str, str],
        title: str,
        description: str,
        inputs: Mapping[str, Sequence[tuple[str, str]]] | None = None,
    ) -> str:
        """Launch one asset backfill. With `inputs` ({upstream asset: [(first, last), ...]}),
        those upstream ranges are backfilled in the same backfill, before the asset."""
        params: dict[str, Any] = {
            "tags": [{"key": k, "value": v} for k, v in tags.items()],
            "title": title,
            "description": description,
        }
        if inputs:
            spans = {asset: [(partition_keys[0], partition_keys[-1])], **inputs}
            params["partitionsByAssets"] = [
                {
                    "assetKey": {"path": name.split("/")},
                    "partitions": {"ranges": [{"start": a, "end": b} for a, b in ranges]},
                }
                for name, ranges in spans.items()
            ]
        else:
            params["assetSelection"] = [{"path": asset.split("/")}]
            params["partitionNames"] = list(partition_keys)
        result = self.query(_LAUNCH, {"params": params})["launchPartitionBackfill"]
        if result["__typename"] != "LaunchBackfillSuccess":
            raise DagsterUnavailable(
                f"Dagster did not launch the backfill: {result.get('message', result)}"
            )
        return result["backfillId"]

    def backfill(self, backfill_id: str) -> BackfillStatus | None:
        """The backfill, or None when Dagster has none by that id."""
        result = self.query(_BACKFILL, {"id": backfill_id})["partitionBackfillOrError"]
        if result["__typename"] == "BackfillNotFoundError":
            return None
        if result["__typename"] != "PartitionBackfill":
            raise DagsterUnavailable(f"Dagster could not read backfill {backfill_id}: {result}")
        return _status(result)

    def backfills(self, limit: int = 100) -> list[BackfillStatus]:
        """The most recent backfills, newest first."""
        result = self.query(_BACKFILLS, {"limit": limit})["partitionBackfillsOrError"]
        if result["__typename"] != "PartitionBackfills":
            raise DagsterUnavailable(f"Dagster could not list backfills: {result}")
        return [_status(item) for item in result["results"]]

    def requested_backfill_tagged(self, key: str, value: str, limit: int = 500) -> str | None:
        """The id of a backfill still REQUESTED (running or about to) with the tag key=value,
        or None. Reads only ids and tags: no partition counts to compute."""
        result = self.query(_REQUESTED, {"limit": limit})["partitionBackfillsOrError"]
        if result["__typename"] != "PartitionBackfills":
            raise DagsterUnavailable(f"Dagster could not list backfills: {result}")
        for item in result["results"]:
            if any(t["key"] == key and t["value"] == value for t in item.get("tags") or []):
                return item["id"]
        return None

    def cancel_backfill(self, backfill_id: str) -> None:
        result = self.query(_CANCEL, {"id": backfill_id})["cancelPartitionBackfill"]
        if result["__typename"] != "CancelBackfillSuccess":
            raise DagsterUnavailable(
                f"Dagster did not cancel backfill {backfill_id}: {result.get('message', result)}"
            )

    def partition_statuses(self, assets: Sequence[str]) -> dict[str, dict[str, str]]:
        """For each asset, its partition ranges that are MATERIALIZED, FAILED or MATERIALIZING:
        {asset: {"startKey..endKey": status}} as Dagster reports them."""
        keys = [{"path": asset.split("/")} for asset in assets]
        nodes = self.query(_PARTITION_STATUSES, {"keys": keys})["assetNodes"]
        statuses: dict[str, dict[str, str]] = {}
        for node in nodes:
            name = "/".join(node["assetKey"]["path"])
            ranges = (node.get("assetPartitionStatuses") or {}).get("ranges") or []
            statuses[name] = {f"{r['startKey']}..{r['endKey']}": r["status"] for r in ranges}
        return statuses

    def unsynced(self, asset: str, partition_keys: Sequence[str]) -> set[str]:
        """Of the asset's (materialized) partitions, those Dagster marks stale: the UI's
        "Unsynced", built from inputs that have changed since."""
        if not partition_keys:
            return set()
        variables = {"keys": [{"path": asset.split("/")}], "partitions": list(partition_keys)}
        nodes = self.query(_STALE, variables)["assetNodes"]
        if not nodes:
            return set()
        statuses = nodes[0].get("staleStatusByPartition") or []
        return {k for k, s in zip(partition_keys, statuses, strict=False) if s == "STALE"}

    def built(self, assets: Sequence[str]) -> set[str]:
        """The (unpartitioned) assets of `assets` that have been materialized at least once."""
        keys = [{"path": asset.split("/")} for asset in assets]
        nodes = self.query(_BUILT, {"keys": keys})["assetNodes"]
        return {"/".join(n["assetKey"]["path"]) for n in nodes if n.get("assetMaterializations")}


def _status(item: Mapping[str, Any]) -> BackfillStatus:
    tags = {t["key"]: t["value"] for t in item.get("tags") or []}
    data = item.get("assetBackfillData") or {}
    counts = [
        s
        for s in data.get("assetBackfillStatuses") or []
        if s["__typename"] == "AssetPartitionsStatusCounts"
    ]
    roots = data.get("rootTargetedPartitions") or {}
    keys = roots.get("partitionKeys") or []
    ranges = roots.get("ranges") or []
    first = keys[0] if keys else (ranges[0]["start"] if ranges else None)
    last = keys[-1] if keys else (ranges[-1]["end"] if ranges else None)
    return BackfillStatus(
        id=item["id"],
        status=item["status"],
        models=tuple("/".join(a["path"]) for a in item.get("assetSelection") or []),
        first=first,
        last=last,
        launched_by=tags.get(LAUNCHED_BY_TAG),
        reason=tags.get(REASON_TAG),
        created=item["timestamp"],
        ended=item.get("endTimestamp"),
        targeted=sum(c["numPartitionsTargeted"] for c in counts),
        done=sum(c["numPartitionsMaterialized"] for c in counts),
        failed=sum(c["numPartitionsFailed"] for c in counts),
        in_progress=sum(c["numPartitionsInProgress"] for c in counts),
        tags=tags,
    )
