"""Render a model's Jinja without dbt, keeping the way back to the lines of the original file.

`dbt compile` takes seconds per project and needs a profile; a linter must read a thousand
models in a few seconds on a bare checkout. So models are rendered with a Jinja environment of
our own in which:

- `ref('x')`, `source('s', 't')` and `this` render to marker relations (`__flower_ref_3`), one
  identifier on one line, and the call is recorded (which model, which source);
- the window macros (`flower_in_window(column)`, `flower_window_start()`/`_end()`) render to
  marker functions that keep their column, so the SQL parser sees which input a window filters;
- `config(...)` records its arguments; `var`, `env_var`, `is_incremental`, `target`, `adapter`,
  `execute` (false, as while dbt parses) behave plausibly; the project's own macros can be
  called, and an unknown macro renders to a placeholder name that the rules ignore.

Line numbers survive: before rendering, every newline of the template's text (outside Jinja
tags) gets an invisible anchor naming its source line; after rendering the anchors are removed
and kept as a map from offsets in the rendered SQL to lines of the file.
"""

from __future__ import annotations

import ast
import bisect
import datetime
import itertools
import json
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import jinja2
import jinja2.ext
import yaml

WINDOW_PREDICATES = frozenset({"flower_in_window"})
WINDOW_BOUNDS = frozenset({"flower_window_start", "flower_window_end"})
REF_PREFIX = "__flower_ref_"
SOURCE_PREFIX = "__flower_source_"
THIS_MARKER = "__flower_this"
MACRO_PREFIX = "__flower_macro_"
# Private-use characters: they cannot occur in SQL, and Jinja's whitespace control stops at them.
_ANCHOR_OPEN = "\ue000"
_ANCHOR_CLOSE = "\ue001"
_ANCHOR = re.compile(f"{_ANCHOR_OPEN}(\\d+){_ANCHOR_CLOSE}")
# A macro that renders a whole query where a CTE body or a subquery is expected.
_QUERY_PLACEHOLDER = re.compile(
    rf"(\b(?:as|from|join)\s*\(\s*)({MACRO_PREFIX}\w+)(\s*\))", re.IGNORECASE
)
_MACRO_BLOCK = re.compile(
    r"\{%-?\s*macro\s+(\w+)\s*\(.*?\{%-?\s*endmacro\s*-?%\}", re.S | re.IGNORECASE
)
# dbt's adapter names for the sqlglot dialects a project is likely to use.
ADAPTER_TYPES = {"duckdb": "duckdb", "spark": "spark", "databricks": "databricks"}


class RenderError(Exception):
    """The model's Jinja cannot be rendered; `line` is a line of the original file (or None)."""

    def __init__(self, message: str, line: int | None, config: Mapping[str, Any] | None = None):
        super().__init__(message)
        self.line = line
        self.config = dict(config or {})  # what `config(...)` said before the error


@dataclass(frozen=True)
class RelationCall:
    """One `ref()`, `source()` or `this` of a model, and the marker it rendered to."""

    kind: str  # "ref" | "source" | "this"
    name: str  # the model name; "source.table" for a source
    marker: str
    package: str | None = None  # a two-argument ref's package (or project)


@dataclass
class Rendered:
    """A model's rendered SQL with its calls and the map back to the original lines."""

    sql: str
    relations: dict[str, RelationCall]  # marker -> call
    config: dict[str, Any]  # the arguments of its `config(...)` calls
    window_calls: int
    _anchors: list[tuple[int, int]] = field(default_factory=list)  # (offset, source line)

    def position(self, offset: int) -> tuple[int, int]:
        """(line, column) in the original file of an offset in the rendered SQL (1-based)."""
        index = bisect.bisect_right(self._anchors, (offset, 1 << 30)) - 1
        start, line = self._anchors[max(index, 0)]
        between = self.sql[start:offset]
        if "\n" in between:  # a macro rendered several lines: point at the line that called it
            return line, 1
        return line, offset - start + 1


def mark_lines(template: str) -> str:
    """The template with an anchor after every newline that lies outside Jinja tags."""
    out: list[str] = []
    line = 1
    position = 0
    for start, end in _jinja_tags(template):
        line = _mark_text(template[position:start], line, out)
        tag = template[start:end]
        out.append(tag)
        line += tag.count("\n")
        position = end
    _mark_text(template[position:], line, out)
    return "".join(out)


_RAW_BLOCK = re.compile(r"\{%-?\s*raw\s*-?%\}.*?\{%-?\s*endraw\s*-?%\}", re.S)


def _jinja_tags(template: str) -> Iterator[tuple[int, int]]:
    """(start, end) of each Jinja tag, comment and raw block. A tag ends at the first `}}` or
    `%}` outside its string literals (`post_hook="{{ macro() }}"` stays inside its tag)."""
    position = 0
    length = len(template)
    while True:
        start = template.find("{", position)
        if start < 0 or start + 1 >= length:
            return
        kind = template[start + 1]
        if kind == "#":
            end = template.find("#}", start + 2)
            end = length if end < 0 else end + 2
        elif kind == "%" and (raw := _RAW_BLOCK.match(template, start)):
            end = raw.end()
        elif kind in "{%":
            closing = "}}" if kind == "{" else "%}"
            end = index = start + 2
            quote = None
            while index < length:
                char = template[index]
                if quote:
                    if char == "\\":
                        index += 1
                    elif char == quote:
                        quote = None
                elif char in "'\"":
                    quote = char
                elif template.startswith(closing, index):
                    break
                index += 1
            end = min(index + 2, length)
        else:
            position = start + 1
            continue
        yield start, end
        position = end


def _mark_text(text: str, line: int, out: list[str]) -> int:
    pieces = text.split("\n")
    out.append(pieces[0])
    for piece in pieces[1:]:
        line += 1
        out.append(f"\n{_ANCHOR_OPEN}{line}{_ANCHOR_CLOSE}{piece}")
    return line


def unmark(rendered: str) -> tuple[str, list[tuple[int, int]]]:
    """Rendered text without anchors, and the anchors as (offset in that text, source line)."""
    anchors = [(0, 1)]
    parts: list[str] = []
    length = 0
    position = 0
    for match in _ANCHOR.finditer(rendered):
        chunk = rendered[position : match.start()]
        parts.append(chunk)
        length += len(chunk)
        anchors.append((length, int(match.group(1))))
        position = match.end()
    parts.append(rendered[position:])
    return "".join(parts), anchors


class _Return(Exception):  # dbt's `return()` is control flow, not an error
    def __init__(self, value: Any):
        self.value = value


class _Placeholder:
    """What an unknown macro renders to: a name that parses as a column or a relation."""

    def __init__(self, name: str):
        self.name = MACRO_PREFIX + re.sub(r"\W", "_", name or "unknown")

    def __str__(self) -> str:
        return self.name

    __html__ = __str__

    def __call__(self, *args: Any, **kwargs: Any) -> _Placeholder:
        return self

    def __getattr__(self, name: str) -> _Placeholder:
        if name.startswith("__"):
            raise AttributeError(name)
        return self

    def __iter__(self) -> Iterator[Any]:
        return iter(())

    def __len__(self) -> int:
        return 0

    def __bool__(self) -> bool:
        return True

    def __add__(self, other: Any) -> str:
        return str(self) + str(other)

    def __radd__(self, other: Any) -> str:
        return str(other) + str(self)


class _Unknown(jinja2.ChainableUndefined):
    """An undefined name: empty when printed, a placeholder when called (an unknown macro)."""

    def __call__(self, *args: Any, **kwargs: Any) -> _Placeholder:  # type: ignore[override]
        return _Placeholder(self._undefined_name or "macro")

    def __str__(self) -> str:
        return ""


class _Relation(Mapping[str, Any]):
    """What `ref()`/`source()`/`this` return: prints as its marker, has a relation's attributes.

    A mapping with `metadata.type` ending in "Relation", as dbt's relations are: packages check
    that (dbt_utils' `_is_relation`) before they introspect one.
    """

    def __init__(self, marker: str, identifier: str, schema: str = "main"):
        self.marker = marker
        self.identifier = self.name = self.table = identifier
        self.schema = schema
        self.database = "flower"
        self.type = "table"
        self.is_table = True
        self.is_view = False
        self._fields = {
            "metadata": {"type": "FlowerRelation"},
            "path": {"database": self.database, "schema": schema, "identifier": identifier},
            "type": self.type,
        }

    def __getitem__(self, key: str) -> Any:
        return self._fields[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._fields)

    def __len__(self) -> int:
        return len(self._fields)

    def __str__(self) -> str:
        # dbt prints a quoted relation ("db"."schema"."name"), which SQL reads even right after
        # a keyword (`left join{{ ref('x') }}`); a bare marker would join the keyword.
        return f" {self.marker}"

    __html__ = __str__

    def render(self) -> str:
        return str(self)

    def include(self, *args: Any, **kwargs: Any) -> _Relation:
        return self

    quote = incorporate = include

    __hash__ = object.__hash__

    def __eq__(self, other: object) -> bool:
        return self is other


class _RelationApi:
    """`api.Relation.create(...)`: a relation a macro builds by name, at run time. It prints as
    a placeholder the rules ignore (which table it is depends on the warehouse)."""

    def create(
        self, database: Any = None, schema: Any = None, identifier: Any = None, **kwargs: Any
    ) -> _Relation:
        name = str(identifier or "relation")
        return _Relation(MACRO_PREFIX + re.sub(r"\W", "_", f"relation_{name}"), name, str(schema))


class _Config:
    """`config(...)` in a model: records its arguments; `config.get` reads the known config."""

    def __init__(self, known: Mapping[str, Any]):
        self.known = dict(known)
        self.calls: dict[str, Any] = {}

    def __call__(self, *args: Any, **kwargs: Any) -> str:
        for arg in args:
            if isinstance(arg, Mapping):
                self.calls.update(arg)
        self.calls.update(kwargs)
        return ""

    def get(self, name: str, default: Any = None, validator: Any = None) -> Any:
        return self.calls.get(name, self.known.get(name, default))

    def require(self, name: str, validator: Any = None) -> Any:
        return self.get(name)

    def set(self, name: str, value: Any) -> str:
        self.calls[name] = value
        return ""

    def persist_relation_docs(self) -> bool:
        return False

    persist_column_docs = persist_relation_docs


class _Namespace:
    """Attribute access on a macro namespace (`dbt.date_trunc`, `my_project.my_macro`)."""

    def __init__(self, lookup: Callable[[str], Any]):
        self._lookup = lookup

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)
        return self._lookup(name)

    def __getitem__(self, name: str) -> Any:
        return self._lookup(name)


class _Adapter:
    def __init__(self, renderer: Renderer):
        self._renderer = renderer

    def dispatch(self, name: str, macro_namespace: str | None = None) -> Any:
        return self._renderer.dispatch(name, macro_namespace)

    def quote(self, identifier: Any) -> str:
        quote = "`" if self._renderer.adapter_type in ("spark", "databricks") else '"'
        return f"{quote}{identifier}{quote}"

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)
        if name in WAREHOUSE_ADAPTER_METHODS:
            return self._renderer._warehouse(f"adapter.{name}", None)
        return lambda *args, **kwargs: None


def _raise_compiler_error(message: str = "", *args: Any) -> None:
    raise RenderError(f"the model raised a compiler error: {message}", None)


class _Exceptions:
    raise_compiler_error = staticmethod(_raise_compiler_error)

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)
        return lambda *args, **kwargs: None


def _sql_list(value: Any) -> str:
    if isinstance(value, list | tuple):
        return ", ".join(str(item) for item in value)
    return str(value)


# dbt's cross-database macros (`dbt.date_trunc(...)` and friends), approximated: what matters is
# that the result parses as the same kind of SQL (an expression or a type). The parameters are
# named as dbt names them, so that keyword calls (`first_date=...`) work.
_DBT_BUILTINS: dict[str, Callable[..., str]] = {
    "date_trunc": lambda datepart, date: f"date_trunc('{datepart}', {date})",
    "datediff": lambda first_date, second_date, datepart: (
        f"date_diff('{datepart}', {first_date}, {second_date})"
    ),
    "dateadd": lambda datepart, interval, from_date_or_timestamp: (
        f"({from_date_or_timestamp} + interval ({interval}) {datepart})"
    ),
    "last_day": lambda date, datepart: f"last_day({date})",
    "current_timestamp": lambda: "current_timestamp",
    "concat": lambda fields: f"concat({_sql_list(fields)})",
    "hash": lambda field: f"md5(cast({field} as varchar))",
    "safe_cast": lambda field, type: f"try_cast({field} as {type})",
    "cast": lambda field, type: f"cast({field} as {type})",
    "string_literal": lambda value: "'" + str(value).replace("'", "''") + "'",
    "escape_single_quotes": lambda expression: str(expression).replace("'", "''"),
    "split_part": lambda string_text, delimiter_text, part_number: (
        f"split_part({string_text}, {delimiter_text}, {part_number})"
    ),
    "any_value": lambda expression: f"any_value({expression})",
    "bool_or": lambda expression: f"bool_or({expression})",
    "position": lambda substring_text, string_text: f"position({substring_text} in {string_text})",
    "replace": lambda field, old_chars, new_chars: f"replace({field}, {old_chars}, {new_chars})",
    "right": lambda string_text, length_expression: f"right({string_text}, {length_expression})",
    "length": lambda expression: f"length({expression})",
    "listagg": lambda measure, delimiter_text="','", order_by_clause=None, limit_num=None: (
        f"string_agg({measure}, {delimiter_text})"
    ),
    "cast_bool_to_text": lambda field: f"cast({field} as varchar)",
    "except": lambda: "except",
    "intersect": lambda: "intersect",
    "type_string": lambda: "varchar",
    "type_timestamp": lambda: "timestamp",
    "type_int": lambda: "integer",
    "type_bigint": lambda: "bigint",
    "type_float": lambda: "double",
    "type_numeric": lambda: "numeric(28, 6)",
    "type_boolean": lambda: "boolean",
}


@dataclass(frozen=True)
class MacroFile:
    path: str
    text: str


class NeedsWarehouse(Exception):
    """Rendering reached a call that only a warehouse connection can answer."""

    def __init__(self, macro: str, primitive: str):
        super().__init__(f"{macro} needs the warehouse")
        self.macro = macro
        self.primitive = primitive


# What a macro can only do with a connection: read the warehouse's catalog or run a query.
WAREHOUSE_ADAPTER_METHODS = frozenset(
    {
        "get_columns_in_relation",
        "get_relation",
        "get_missing_columns",
        "list_relations",
        "list_relations_without_caching",
        "list_schemas",
        "check_schema_exists",
        "get_columns_in_query",
        "execute",
        "expand_target_column_types",
    }
)
WAREHOUSE_FUNCTIONS = frozenset({"run_query", "statement", "load_result"})
# An adapter's macros fall back to its parent adapter's before `default__` (dbt's dispatch).
PARENT_ADAPTERS = {"databricks": ("spark",), "redshift": ("postgres",)}
_MISSING = object()


class _Scope(Mapping[str, Any]):
    """The names a template sees: the model's context, then macros as dbt resolves them.

    A package's macro sees its own package's macros first; everyone sees the root project's
    macros before the other packages' (dbt's resolution order). Macros compile on first use.
    """

    def __init__(self, renderer: Renderer, package: str):
        self._renderer = renderer
        self._package = package

    def __getitem__(self, key: str) -> Any:
        value = self._renderer.lookup(key, self._package)
        if value is _MISSING:
            raise KeyError(key)
        return value

    def __contains__(self, key: object) -> bool:
        return isinstance(key, str) and self._renderer.lookup(key, self._package) is not _MISSING

    def __iter__(self) -> Iterator[str]:
        return iter(self._renderer.context)

    def __len__(self) -> int:
        return len(self._renderer.context)

    def copy(self) -> dict[str, Any]:  # Jinja copies the names when it rewrites a traceback
        return dict(self._renderer.context)


class Renderer:
    """One Jinja environment per project: macros compiled when first called, models one by one.

    `packages` are the installed packages' macro files by package name; `dispatch` is
    dbt_project.yml's `dispatch:` search order by macro namespace.
    """

    def __init__(
        self,
        project_name: str,
        macro_files: list[MacroFile],
        project_vars: Mapping[str, Any],
        dialect: str = "duckdb",
        packages: Mapping[str, list[MacroFile]] | None = None,
        dispatch: Mapping[str, list[str]] | None = None,
    ):
        self.project_name = project_name
        self.project_vars = dict(project_vars)
        self.adapter_type = ADAPTER_TYPES.get(dialect, dialect)
        self.dispatch_order = dict(dispatch or {})
        self.env = jinja2.Environment(
            extensions=[jinja2.ext.do, jinja2.ext.loopcontrols],
            undefined=_Unknown,
            autoescape=False,
            keep_trailing_newline=True,
        )
        for name in ("as_bool", "as_number", "as_text", "as_native"):
            self.env.filters[name] = lambda value: value
        self._calls: dict[str, RelationCall] = {}
        self._windows = 0
        self._counter = itertools.count()
        self.execute = False
        self._stack: list[str] = []
        self.warehouse_calls: list[tuple[str, str]] = []  # (macro the model called, primitive)
        self.macro_errors: list[tuple[str, str]] = []
        # package -> macro name -> its `{% macro %}` block and file; the root project first.
        self._sources: dict[str, dict[str, tuple[str, str]]] = {}
        for package, files in [(project_name, macro_files), *(packages or {}).items()]:
            blocks = self._sources.setdefault(package, {})
            for macro_file in files:
                for match in _MACRO_BLOCK.finditer(macro_file.text):
                    blocks.setdefault(match.group(1), (match.group(0), macro_file.path))
        self._compiled: dict[tuple[str, str], Any] = {}
        self._values: dict[str, Any] = {}
        self.context: dict[str, Any] = self._base_context()
        for package in self._sources:
            if package not in self.context:
                self.context[package] = _Namespace(self._namespace_lookup(package))
        # The window macros always render to markers, even when the project defines them.
        for name in WINDOW_PREDICATES:
            self.context[name] = self._window_predicate(name)
        for name in WINDOW_BOUNDS:
            self.context[name] = self._window_bound(name)
        self._root_scope = _Scope(self, project_name)
        # dbt renders the vars of dbt_project.yml too (a date computed from `modules.datetime`).
        for name, value in list(self.project_vars.items()):
            if isinstance(value, str) and "{{" in value:
                self.project_vars[name] = self.render_value(value)

    # -- the environment -------------------------------------------------------------------

    def _base_context(self) -> dict[str, Any]:
        return {
            "execute": False,
            "flags": {"FULL_REFRESH": False, "WHICH": "run", "STORE_FAILURES": False},
            "target": {
                "name": "dev",
                "type": self.adapter_type,
                "schema": "main",
                "database": "flower",
                "profile_name": self.project_name,
                "threads": 1,
            },
            "adapter": _Adapter(self),
            "api": {"Relation": _RelationApi(), "Column": _Placeholder("column")},
            "exceptions": _Exceptions(),
            "modules": {"re": re, "datetime": datetime, "itertools": itertools, "json": json},
            "log": lambda *args, **kwargs: "",
            "print": lambda *args, **kwargs: "",
            "return": self._return,
            "run_query": self._warehouse("run_query", None),
            "statement": self._warehouse("statement", ""),
            "load_result": self._warehouse("load_result", None),
            "graph": {"nodes": {}, "sources": {}, "exposures": {}, "metrics": {}},
            "tojson": lambda value, *args, **kwargs: json.dumps(value, default=str),
            "fromjson": lambda value, default=None: json.loads(value) if value else default,
            "toyaml": lambda value, *args, **kwargs: yaml.safe_dump(value),
            "fromyaml": lambda value, default=None: yaml.safe_load(value) if value else default,
            "zip": zip,
            "set": set,
            "local_md5": lambda value: "0" * 32,
            "invocation_id": "00000000-0000-0000-0000-000000000000",
            "run_started_at": datetime.datetime(2024, 1, 1),
            "selected_resources": [],
            "project_name": self.project_name,
            "var": self._var,
            "env_var": self._env_var,
            "dbt": _Namespace(self._dbt_macro),
        }

    def lookup(self, name: str, package: str) -> Any:
        """What `name` means inside a template of `package` (_MISSING when nothing)."""
        if name in self.context:
            return self.context[name]
        for owner in (package, self.project_name):
            macro = self.macro(owner, name)
            if macro is not None:
                return macro
        for owner in self._sources:
            macro = self.macro(owner, name)
            if macro is not None:
                return macro
        return self.env.globals.get(name, _MISSING)

    def macro(self, package: str, name: str) -> Any:
        """The macro `name` of `package`, compiled on first use; None when it has none."""
        key = (package, name)
        if key in self._compiled:
            return self._compiled[key]
        source = self._sources.get(package, {}).get(name)
        if source is None:
            return None
        self._compiled[key] = None  # a broken macro is looked up once
        try:
            template = self.env.from_string(source[0])
            context = template.new_context(_Scope(self, package), shared=True)  # type: ignore[arg-type]
            for _ in template.root_render_func(context):  # type: ignore[attr-defined]
                pass
            # From the template's own names: a module would not export `_private` macros.
            jinja_macro = context.vars[name]
        except Exception as error:  # a broken macro must not stop the lint of every model
            self.macro_errors.append((source[1], str(error)))
            return None
        shown = name if package == self.project_name else f"{package}.{name}"
        self._compiled[key] = self._wrap(jinja_macro, shown)
        return self._compiled[key]

    def _namespace_lookup(self, package: str) -> Callable[[str], Any]:
        def lookup(name: str) -> Any:
            macro = self.macro(package, name)
            return macro if macro is not None else _Placeholder(f"{package}_{name}")

        return lookup

    def _wrap(self, macro: Any, shown: str) -> Callable[..., Any]:
        stack = self._stack

        def call(*args: Any, **kwargs: Any) -> Any:
            stack.append(shown)
            try:
                return macro(*args, **kwargs)
            except _Return as returned:
                return returned.value
            finally:
                stack.pop()

        return call

    def _warehouse(self, primitive: str, empty: Any) -> Callable[..., Any]:
        """A call only a warehouse can answer: recorded (and empty) while `execute` is false,
        as dbt parses; when rendering as dbt executes, it stops the render."""

        def call(*args: Any, **kwargs: Any) -> Any:
            macro = self._stack[0] if self._stack else primitive
            if self.execute:
                raise NeedsWarehouse(macro, primitive)
            self.warehouse_calls.append((macro, primitive))
            return empty

        return call

    @staticmethod
    def _return(value: Any = None) -> None:
        raise _Return(value)

    def _var(self, name: str, default: Any = _MISSING) -> Any:
        if name in self.project_vars:
            return self.project_vars[name]
        return default if default is not _MISSING else _Placeholder(f"var_{name}")

    @staticmethod
    def _env_var(name: str, default: Any = None) -> Any:
        # Not read from the environment: a lint result must not depend on the shell.
        return default if default is not None else f"__flower_env_{name}"

    def dispatch(self, name: str, macro_namespace: str | None = None) -> Any:
        """dbt's `adapter.dispatch`: `<adapter>__name`, its parents', then `default__name`, in
        the root project and the namespace's package (or dbt_project.yml's search order)."""
        if macro_namespace is None:
            packages = list(self._sources)
        elif macro_namespace in self.dispatch_order:
            packages = self.dispatch_order[macro_namespace]
        else:
            packages = [self.project_name, macro_namespace]
        prefixes = (self.adapter_type, *PARENT_ADAPTERS.get(self.adapter_type, ()), "default")
        for package in packages:
            for prefix in prefixes:
                macro = self.macro(package, f"{prefix}__{name}")
                if macro is not None:
                    return macro
        if name in _DBT_BUILTINS:
            return _DBT_BUILTINS[name]
        return _Placeholder(name)

    def _dbt_macro(self, name: str) -> Any:
        if name in _DBT_BUILTINS:
            return _DBT_BUILTINS[name]
        return self.lookup(name, self.project_name) if name in self else _Placeholder(name)

    def __contains__(self, name: str) -> bool:
        return any(name in blocks for blocks in self._sources.values())

    def render_value(self, text: str) -> Any:
        """A Jinja string of dbt_project.yml or a properties file (`"{{ var('x') }}"`), rendered
        as dbt renders them (vars, env_var, target, modules), to a native value where it is one
        (True, 3, ...; a date stays text)."""
        if text not in self._values:  # the same folder config is read by every model under it
            self._values[text] = self._render_value(text)
        return self._values[text]

    def _render_value(self, text: str) -> Any:
        names = ("var", "env_var", "target", "modules", "project_name")
        try:
            rendered = self.env.from_string(text).render({n: self.context[n] for n in names})
        except Exception:
            return text
        if rendered.strip().lower() in ("true", "false"):
            return rendered.strip().lower() == "true"
        try:
            value = ast.literal_eval(rendered.strip())
        except (ValueError, SyntaxError, MemoryError, RecursionError):
            return rendered
        native = isinstance(value, bool | int | float | list | dict | type(None))
        return value if native else rendered

    def _window_predicate(self, name: str) -> Callable[..., str]:
        def window(column: Any = "", *args: Any, **kwargs: Any) -> str:
            self._windows += 1
            return f"{name}({column})"

        return window

    def _window_bound(self, name: str) -> Callable[..., str]:
        def bound(*args: Any, **kwargs: Any) -> str:
            self._windows += 1
            return f"{name}()"

        return bound

    # -- a model -------------------------------------------------------------------------

    def _ref(self, *args: Any, **kwargs: Any) -> _Relation:
        names = [str(arg) for arg in args] or [str(kwargs.get("name", ""))]
        name = names[-1]
        package = names[0] if len(names) > 1 else kwargs.get("package")
        marker = f"{REF_PREFIX}{next(self._counter)}"
        self._calls[marker] = RelationCall("ref", name, marker, str(package) if package else None)
        return _Relation(marker, name)

    def _source(self, source_name: str, table_name: str) -> _Relation:
        marker = f"{SOURCE_PREFIX}{next(self._counter)}"
        self._calls[marker] = RelationCall("source", f"{source_name}.{table_name}", marker)
        return _Relation(marker, table_name, str(source_name))

    def render(
        self,
        name: str,
        template_text: str,
        known_config: Mapping[str, Any],
        path: str = "",
        execute: bool = False,
    ) -> Rendered:
        """Render one model; raises RenderError with the line of the original file.

        With `execute` true, as dbt renders to run, a call that needs the warehouse raises
        NeedsWarehouse; with it false (as dbt parses) such calls return nothing and are listed
        in `warehouse_calls`.
        """
        self._calls = {}
        self._windows = 0
        self._stack.clear()
        self.warehouse_calls = []
        self.execute = execute
        config = _Config(known_config)

        def is_incremental() -> bool:
            return config.get("materialized") == "incremental"

        this = _Relation(THIS_MARKER, name)
        self._calls[THIS_MARKER] = RelationCall("this", name, THIS_MARKER)
        self.context.update(
            {
                "execute": execute,
                "ref": self._ref,
                "source": self._source,
                "config": config,
                "is_incremental": is_incremental,
                "this": this,
                "model": {
                    "name": name,
                    "alias": name,
                    "unique_id": f"model.{self.project_name}.{name}",
                    "resource_type": "model",
                    "original_file_path": path,
                    "config": config,
                    "attached_node": None,
                },
            }
        )
        try:
            try:
                template = self.env.from_string(mark_lines(template_text))
                context = template.new_context(self._root_scope, shared=True)  # type: ignore[arg-type]
                rendered = self.env.concat(template.root_render_func(context))  # type: ignore[attr-defined]
            except (jinja2.TemplateSyntaxError, NeedsWarehouse, _Return):
                raise
            except Exception:
                self.env.handle_exception()  # re-raises with the template's lines in the traceback
        except jinja2.TemplateSyntaxError as error:
            raise RenderError(
                f"Jinja syntax error: {error.message}", error.lineno, config.calls
            ) from None
        except NeedsWarehouse:
            raise
        except RenderError as error:
            raise RenderError(str(error), _template_line(error), config.calls) from None
        except _Return as returned:
            rendered = str(returned.value)
        except Exception as error:
            raise RenderError(
                f"Jinja error: {type(error).__name__}: {error}",
                _template_line(error),
                config.calls,
            ) from None
        finally:
            self.execute = False
        rendered = _QUERY_PLACEHOLDER.sub(r"\1select * from \2\3", rendered)
        sql, anchors = unmark(rendered)
        if re.fullmatch(rf"\s*{MACRO_PREFIX}\w+\s*;?\s*", sql):
            sql = f"select * from {sql.strip().rstrip(';')}"
        return Rendered(sql, dict(self._calls), dict(config.calls), self._windows, anchors)


def _template_line(error: BaseException) -> int | None:
    """The template line a Jinja runtime error happened on (Jinja rewrites its traceback)."""
    traceback = error.__traceback__
    while traceback is not None:
        if traceback.tb_frame.f_code.co_filename == "<template>":
            # The outermost template frame is the model's; deeper ones are its macros.
            return traceback.tb_lineno
        traceback = traceback.tb_next
    return None
