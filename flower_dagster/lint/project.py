"""The dbt project as the linter reads it: files on disk, no dbt parse, no manifest.

Models are the `.sql` (and `.py`) files under the project's model paths. Their configuration
comes from where dbt takes it, lowest precedence first: `dbt_project.yml` (`models:` by
folder), the model's entry in a properties file (`config:` and the older top-level keys), and
the model's own `{{ config(...) }}` (read while rendering). `meta` merges key by key, like dbt.
Properties files are read with a loader that keeps each entry's line and reports duplicate
keys, which PyYAML would otherwise silently drop (the team's "YAML conflicts").
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from flower_dagster.lint.findings import Finding
from flower_dagster.lint.render import MacroFile

_SKIP_DIRS = {"target", "dbt_packages", "logs", "state", ".venv", "node_modules"}
_CONFLICT_MARKER = re.compile(r"^(<{7}|={7}|>{7})(\s|$)", re.M)
# Keys of dbt_project.yml's `models:` tree that are configs even without a leading `+`.
_CONFIG_KEYS = {
    "materialized",
    "meta",
    "tags",
    "schema",
    "database",
    "alias",
    "enabled",
    "group",
    "incremental_strategy",
    "unique_key",
    "on_schema_change",
    "full_refresh",
    "docs",
    "persist_docs",
    "contract",
    "access",
    "grants",
    "pre-hook",
    "post-hook",
    "sql_header",
}
_BaseLoader: type = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class LineDict(dict):
    """A YAML mapping that remembers the line it starts on (1-based)."""

    line: int = 1


class _Loader(_BaseLoader):  # type: ignore[misc, valid-type]
    """SafeLoader that records duplicate keys (with their line) instead of dropping them."""

    def __init__(self, stream: str):
        super().__init__(stream)
        self.duplicates: list[tuple[str, int]] = []


def _construct_mapping(loader: _Loader, node: yaml.MappingNode, deep: bool = False) -> LineDict:
    loader.flatten_mapping(node)
    mapping = LineDict()
    mapping.line = node.start_mark.line + 1
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=True)
        if isinstance(key, list):
            key = tuple(key)
        if key in mapping:
            loader.duplicates.append((str(key), key_node.start_mark.line + 1))
        mapping[key] = loader.construct_object(value_node, deep=True)
    return mapping


_Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


@dataclass(frozen=True)
class YamlFile:
    path: Path  # absolute
    text: str
    data: Any  # None when it could not be read


@dataclass(frozen=True)
class Properties:
    """A model's entry in a properties file."""

    path: Path  # absolute
    line: int
    data: Mapping[str, Any]


@dataclass
class Model:
    name: str
    path: Path  # absolute path of the .sql (or .py) file
    text: str | None  # None for a Python model: there is no SQL to lint
    project_config: dict[str, Any]
    properties: Properties | None = None

    def base_config(self) -> dict[str, Any]:
        """dbt_project.yml's config overlaid with the properties entry's (before config())."""
        config = dict(self.project_config)
        if self.properties is not None:
            data = self.properties.data
            legacy = {key: data[key] for key in ("meta", "group", "tags") if key in data}
            for layer in (legacy, data.get("config") or {}):
                config = merge_config(config, layer)
        return config


@dataclass
class Project:
    root: Path
    name: str
    vars: dict[str, Any]
    models: dict[str, Model]
    yaml_files: list[YamlFile]
    macro_files: list[MacroFile]
    macro_paths: list[Path]
    group_owners: dict[str, Any]
    findings: list[Finding] = field(default_factory=list)  # YAML problems found while reading
    unreadable: set[Path] = field(default_factory=set)  # YAML files that could not be loaded


def merge_config(base: Mapping[str, Any], layer: Mapping[str, Any]) -> dict[str, Any]:
    """dbt's config precedence: a later layer wins; `meta` is merged key by key."""
    merged = dict(base)
    for key, value in layer.items():
        key = str(key).lstrip("+")
        if key == "meta" and isinstance(value, Mapping) and isinstance(merged.get("meta"), Mapping):
            merged["meta"] = {**merged["meta"], **value}
        else:
            merged[key] = value
    return merged


def read_yaml(path: Path, text: str) -> tuple[Any, list[Finding]]:
    """Load a YAML file; its duplicate keys, conflict markers and syntax errors as findings."""
    findings = [
        Finding(path, text.count("\n", 0, match.start()) + 1, 1, "FL007", _conflict(match))
        for match in _CONFLICT_MARKER.finditer(text)
    ]
    loader = _Loader(text)
    try:
        data = loader.get_single_data()
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None) or getattr(error, "context_mark", None)
        line, col = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        problem = getattr(error, "problem", None) or str(error)
        if not findings:  # a conflict marker explains the syntax error already
            findings.append(Finding(path, line, col, "FL007", f"invalid YAML: {problem}"))
        return None, findings
    finally:
        loader.dispose()
    findings += [
        Finding(path, line, 1, "FL007", f"duplicate key '{key}': YAML keeps only the last one")
        for key, line in loader.duplicates
    ]
    return data, findings


def _conflict(match: re.Match[str]) -> str:
    return f"unresolved merge conflict marker '{match.group(1)}'"


def conflict_findings(path: Path, text: str) -> list[Finding]:
    return [
        Finding(path, text.count("\n", 0, match.start()) + 1, 1, "FL007", _conflict(match))
        for match in _CONFLICT_MARKER.finditer(text)
    ]


def load_project(root: Path) -> Project:
    """Read a dbt project's models, properties files, macros and dbt_project.yml."""
    from flower_dagster.lint.errors import LintError

    root = root.resolve()
    project_file = root / "dbt_project.yml"
    if not project_file.is_file():
        raise LintError(f"{root} is not a dbt project: it has no dbt_project.yml")
    findings: list[Finding] = []
    project_data, problems = read_yaml(project_file, project_file.read_text(encoding="utf-8"))
    findings += problems
    if not isinstance(project_data, Mapping):
        project_data = {}
    name = str(project_data.get("name") or root.name)
    model_paths = [root / p for p in project_data.get("model-paths") or ["models"]]
    macro_paths = [root / p for p in project_data.get("macro-paths") or ["macros"]]
    models_tree = (project_data.get("models") or {}).get(name) or {}
    raw_vars = project_data.get("vars") or {}
    project_vars = {k: v for k, v in raw_vars.items() if not isinstance(v, Mapping)}
    if isinstance(raw_vars.get(name), Mapping):
        project_vars.update(raw_vars[name])

    models: dict[str, Model] = {}
    yaml_files: list[YamlFile] = []
    for model_path in model_paths:
        for path in sorted(_files(model_path, (".sql", ".py"))):
            model_name = path.stem
            relative_dirs = path.relative_to(model_path).parts[:-1]
            text = path.read_text(encoding="utf-8") if path.suffix == ".sql" else None
            config = _folder_config(models_tree, relative_dirs, model_name)
            models.setdefault(model_name, Model(model_name, path, text, config))
        for path in sorted(_files(model_path, (".yml", ".yaml"))):
            text = path.read_text(encoding="utf-8")
            data, problems = read_yaml(path, text)
            findings += problems
            yaml_files.append(YamlFile(path, text, data))

    group_owners: dict[str, Any] = {}
    seen: dict[str, Properties] = {}
    for yaml_file in yaml_files:
        if not isinstance(yaml_file.data, Mapping):
            continue
        for group in yaml_file.data.get("groups") or []:
            if isinstance(group, Mapping) and group.get("name"):
                group_owners[str(group["name"])] = group.get("owner")
        for entry in yaml_file.data.get("models") or []:
            if not isinstance(entry, Mapping) or not entry.get("name"):
                continue
            line = entry.line if isinstance(entry, LineDict) else 1
            properties = Properties(yaml_file.path, line, entry)
            model_name = str(entry["name"])
            if model_name in seen:
                first = seen[model_name]
                findings.append(
                    Finding(
                        yaml_file.path,
                        line,
                        1,
                        "FL007",
                        f"model '{model_name}' is defined twice: here and in "
                        f"{_show(first.path, root)}:{first.line}",
                    )
                )
                continue
            seen[model_name] = properties
            if model_name in models:
                models[model_name].properties = properties
            else:
                findings.append(
                    Finding(
                        yaml_file.path,
                        line,
                        1,
                        "FL007",
                        f"properties for model '{model_name}', which has no .sql or .py file "
                        "(renamed or deleted?)",
                    )
                )

    macro_files = [
        MacroFile(str(path), path.read_text(encoding="utf-8"))
        for macro_path in macro_paths
        for path in sorted(_files(macro_path, (".sql",)))
    ]
    return Project(
        root=root,
        name=name,
        vars=project_vars,
        models=models,
        yaml_files=yaml_files,
        macro_files=macro_files,
        macro_paths=macro_paths,
        group_owners=group_owners,
        findings=findings,
        unreadable={yaml_file.path for yaml_file in yaml_files if yaml_file.data is None},
    )


def _files(folder: Path, suffixes: tuple[str, ...]) -> list[Path]:
    if not folder.is_dir():
        return []
    return [
        path
        for path in folder.rglob("*")
        if path.suffix in suffixes
        and path.is_file()
        and not _SKIP_DIRS.intersection(path.relative_to(folder).parts[:-1])
    ]


def _folder_config(tree: Mapping[str, Any], folders: tuple[str, ...], model: str) -> dict:
    """The config dbt_project.yml gives a model in `folders`, outer folders first."""
    config: dict[str, Any] = {}
    node: Any = tree
    for part in (*folders, model):
        if not isinstance(node, Mapping):
            break
        config = merge_config(config, _own_configs(node))
        node = node.get(part)
    if isinstance(node, Mapping):
        config = merge_config(config, _own_configs(node))
    return config


def _own_configs(node: Mapping[str, Any]) -> dict[str, Any]:
    return {
        str(key): value
        for key, value in node.items()
        if str(key).startswith("+") or str(key) in _CONFIG_KEYS
    }


def _show(path: Path, root: Path) -> str:
    try:
        return str(path.relative_to(root))
    except ValueError:
        return str(path)
