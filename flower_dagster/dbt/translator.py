"""How a dbt node becomes a Dagster asset: key = model name, group, owners and grain tag."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from dagster import AssetKey, AutomationCondition
from dagster_dbt import DagsterDbtTranslator, DagsterDbtTranslatorSettings

from flower_dagster.dbt.models import NodeGrain, flower_meta
from flower_dagster.partitions import GRAIN_TAG, UNPARTITIONED


class FlowerTranslator(DagsterDbtTranslator):
    """dagster-dbt's translator with flower-dagster's naming.

    - An asset key is the dbt node's name (`fct_orders`), so it does not move when a model's
      schema changes between environments; `meta.dagster.asset_key` still overrides it.
    - The group is the dbt group, else the model's folder (`staging`, `marts`).
    - Owners come from `meta.owner` (a team name or an email).
    - `flower/grain` tags every asset with its grain, for selections like
      `tag:flower/grain=daily`.
    - dbt tests are asset checks; tests of severity `error` block (the default).
    - Roll-ups (partitioned models with partitioned parents) carry the repair rule.
    """

    def __init__(
        self,
        grains: Mapping[str, NodeGrain] | None = None,
        rollup_conditions: Mapping[str, AutomationCondition] | None = None,
    ) -> None:
        """`rollup_conditions`: the repair rule of each roll-up, by unique id."""
        super().__init__(DagsterDbtTranslatorSettings(enable_asset_checks=True))
        self._grains = dict(grains or {})
        self._rollup_conditions = dict(rollup_conditions or {})

    def get_asset_key(self, dbt_resource_props: Mapping[str, Any]) -> AssetKey:
        if dbt_resource_props["resource_type"] == "source":
            return super().get_asset_key(dbt_resource_props)
        configured = _dagster_meta(dbt_resource_props).get("asset_key")
        if configured:
            return AssetKey(configured)
        return AssetKey([dbt_resource_props["name"]])

    def get_group_name(self, dbt_resource_props: Mapping[str, Any]) -> str | None:
        group = super().get_group_name(dbt_resource_props)
        if group:
            return group
        fqn = dbt_resource_props.get("fqn") or []
        # fqn = [project, folder..., name]: the first folder under models/ names the layer.
        return str(fqn[1]) if len(fqn) > 2 else "default"

    def get_owners(self, dbt_resource_props: Mapping[str, Any]) -> Sequence[str] | None:
        owner = _meta(dbt_resource_props).get("owner")
        if isinstance(owner, str) and owner.strip():
            owner = owner.strip()
            return [owner if "@" in owner or owner.startswith("team:") else f"team:{owner}"]
        return super().get_owners(dbt_resource_props)

    def get_automation_condition(
        self, dbt_resource_props: Mapping[str, Any]
    ) -> AutomationCondition | None:
        node = self._grains.get(dbt_resource_props.get("unique_id", ""))
        if node is not None and node.is_rollup:
            return self._rollup_conditions.get(node.unique_id)
        return None

    def get_tags(self, dbt_resource_props: Mapping[str, Any]) -> Mapping[str, str]:
        tags = dict(super().get_tags(dbt_resource_props))
        if dbt_resource_props["resource_type"] != "source":
            meta = flower_meta(dbt_resource_props)
            grain = meta.get("partition") if isinstance(meta, Mapping) else None
            tags[GRAIN_TAG] = str(grain).lower() if grain else UNPARTITIONED
        return tags


def _meta(props: Mapping[str, Any]) -> Mapping[str, Any]:
    return (props.get("config") or {}).get("meta") or props.get("meta") or {}


def _dagster_meta(props: Mapping[str, Any]) -> Mapping[str, Any]:
    value = _meta(props).get("dagster")
    return value if isinstance(value, Mapping) else {}
