"""The code location (`dagster dev`, `workspace.yaml`): `defs`, gathered in `defs/`."""

from flower_dagster.defs import build_definitions

defs = build_definitions()
