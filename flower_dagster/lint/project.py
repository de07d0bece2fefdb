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
from collections.abc import Mapping, Sequence
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
    # Keys written in the mapping itself; keys merged in with `<<: *anchor` may be overridden
    # there (that is what merge keys are for), so only a key written twice is a duplicate.
    written = {id(key_node) for key_node, _ in node.value if key_node.tag != _MERGE_TAG}
    loader.flatten_mapping(node)
    mapping = LineDict()
    mapping.line = node.start_mark.line + 1
    seen_written: set[Any] = set()
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=True)
        if isinstance(key, list):
            key = tuple(key)
        if id(key_node) in written:
            if key in seen_written:
                loader.duplicates.append((str(key), key_node.start_mark.line + 1))
            seen_written.add(key)
        mapping[key] = loader.construct_object(value_node, deep=True)
    return mapping


_MERGE_TAG = "tag:yaml.org,2002:merge"


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


@dataclass(frozen=True)
class Package:
    """An installed package (`dbt deps` puts it in dbt_packages/): its macros and its nodes."""

    name: str
    root: Path
    macro_files: list[MacroFile]
    nodes: frozenset[str]  # models, seeds and snapshots: what `ref()` may name


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
    # Other ref() targets of the project: seeds, snapshots, versioned models' names.
    other_nodes: set[str] = field(default_factory=set)
    packages: dict[str, Package] = field(default_factory=dict)
    # packages.yml/dependencies.yml names packages that are not installed: refs cannot be known.
    packages_missing: bool = False
    # dbt_project.yml's `dispatch:`: macro namespace -> the packages to search, in order.
    dispatch: dict[str, list[str]] = field(default_factory=dict)

    def ref_target(self, package: str | None, name: str) -> bool | None:
        """Whether `ref([package,] name)` names a node dbt knows; None when it cannot be told."""
        if package is None or package == self.name:
            if name in self.models or name in self.other_nodes:
                return True
            if package is None and any(name in p.nodes for p in self.packages.values()):
                return True
        elif package in self.packages:
            return name in self.packages[package].nodes
        else:
            return None  # another project (dbt mesh) or a package that is not installed
        return None if self.packages_missing else False


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


def load_project(root: Path, cli_vars: Mapping[str, Any] | None = None) -> Project:
    """Read a dbt project's models, properties files, macros, dbt_project.yml and packages.

    `cli_vars` are dbt's `--vars`: they win over dbt_project.yml's `vars:`.
    """
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
    install_path = root / str(project_data.get("packages-install-path") or "dbt_packages")
    packages = _installed_packages(install_path)
    declared = _declared_packages(root)
    raw_vars = project_data.get("vars") or {}
    raw_vars = raw_vars if isinstance(raw_vars, Mapping) else {}
    # A mapping under `vars:` named after a package is that package's scope; any other key is a
    # global var, whatever its value (dbt's rule).
    scopes = {name, *packages, *declared}
    project_vars = {str(k): v for k, v in raw_vars.items() if str(k) not in scopes}
    if isinstance(raw_vars.get(name), Mapping):
        project_vars.update(raw_vars[name])
    project_vars.update(cli_vars or {})

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
    other_nodes = _seeds_and_snapshots(root, project_data, yaml_files)
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
            versions = _version_files(entry)
            if versions:
                # A versioned model is files <name>_v<N>.sql (or `defined_in`); ref() names it.
                other_nodes.add(model_name)
                for file_name in versions:
                    if file_name in models and models[file_name].properties is None:
                        models[file_name].properties = properties
            elif model_name in models:
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
        other_nodes=other_nodes,
        packages=packages,
        packages_missing=bool(set(declared) - set(packages)) or (bool(declared) and not packages),
        dispatch=_dispatch(project_data),
    )


_SNAPSHOT_BLOCK = re.compile(r"\{%-?\s*snapshot\s+(\w+)\s*-?%\}")


def _seeds_and_snapshots(
    root: Path, project_data: Mapping[str, Any], yaml_files: Sequence[YamlFile] = ()
) -> set[str]:
    """The seeds (CSV files) and snapshots (`{% snapshot %}` blocks, YAML `snapshots:`)."""
    nodes = {
        path.stem
        for folder in project_data.get("seed-paths") or ["seeds"]
        for path in _files(root / folder, (".csv",))
    }
    snapshot_yaml: list[Any] = [yaml_file.data for yaml_file in yaml_files]
    for folder in project_data.get("snapshot-paths") or ["snapshots"]:
        for path in _files(root / folder, (".sql",)):
            nodes.update(_SNAPSHOT_BLOCK.findall(path.read_text(encoding="utf-8")))
        for path in _files(root / folder, (".yml", ".yaml")):
            try:
                snapshot_yaml.append(yaml.load(path.read_text(encoding="utf-8"), _BaseLoader))
            except yaml.YAMLError:
                continue
    for data in snapshot_yaml:
        if isinstance(data, Mapping):
            for entry in data.get("snapshots") or []:
                if isinstance(entry, Mapping) and entry.get("name"):
                    nodes.add(str(entry["name"]))
    return nodes


def _version_files(entry: Mapping[str, Any]) -> list[str]:
    """The model files of a versioned model's entry (`versions:`), by dbt's naming."""
    versions = entry.get("versions")
    if not isinstance(versions, list):
        return []
    name = str(entry["name"])
    files = []
    for version in versions:
        if isinstance(version, Mapping) and version.get("v") is not None:
            files.append(str(version.get("defined_in") or f"{name}_v{version['v']}"))
    return files


def _declared_packages(root: Path) -> list[str]:
    """What packages.yml/dependencies.yml ask `dbt deps` for (by the last part of the name)."""
    declared = []
    for file_name in ("packages.yml", "dependencies.yml"):
        path = root / file_name
        if not path.is_file():
            continue
        try:
            data = yaml.load(path.read_text(encoding="utf-8"), _BaseLoader)
        except yaml.YAMLError:
            continue
        for entry in (data or {}).get("packages") or [] if isinstance(data, Mapping) else []:
            if isinstance(entry, Mapping):
                spec = entry.get("package") or entry.get("git") or entry.get("local") or ""
                declared.append(re.sub(r"\.git$", "", str(spec).rstrip("/")).split("/")[-1])
    return declared


def _installed_packages(install_path: Path) -> dict[str, Package]:
    """The packages `dbt deps` installed: each folder of dbt_packages/ with a dbt_project.yml."""
    packages: dict[str, Package] = {}
    if not install_path.is_dir():
        return packages
    for folder in sorted(install_path.iterdir()):
        project_file = folder / "dbt_project.yml"
        if not project_file.is_file():
            continue
        try:
            data = yaml.load(project_file.read_text(encoding="utf-8"), _BaseLoader)
        except yaml.YAMLError:
            continue
        data = data if isinstance(data, Mapping) else {}
        name = str(data.get("name") or folder.name)
        nodes = _seeds_and_snapshots(folder, data)
        for model_path in data.get("model-paths") or ["models"]:
            nodes.update(path.stem for path in _files(folder / model_path, (".sql", ".py")))
        macro_files = [
            MacroFile(str(path), path.read_text(encoding="utf-8"))
            for macro_path in data.get("macro-paths") or ["macros"]
            for path in sorted(_files(folder / macro_path, (".sql",)))
        ]
        packages[name] = Package(name, folder, macro_files, frozenset(nodes))
    return packages


def _dispatch(project_data: Mapping[str, Any]) -> dict[str, list[str]]:
    dispatch: dict[str, list[str]] = {}
    for entry in project_data.get("dispatch") or []:
        if isinstance(entry, Mapping) and entry.get("macro_namespace"):
            order = entry.get("search_order") or []
            dispatch[str(entry["macro_namespace"])] = [str(name) for name in order]
    return dispatch


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
