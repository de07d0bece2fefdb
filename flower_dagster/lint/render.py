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
_JINJA_TAG = re.compile(
    r"\{\{.*?\}\}|\{%-?\s*raw\s*-?%\}.*?\{%-?\s*endraw\s*-?%\}|\{%.*?%\}|\{#.*?#\}", re.S
)
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

    def __init__(self, message: str, line: int | None):
        super().__init__(message)
        self.line = line


@dataclass(frozen=True)
class RelationCall:
    """One `ref()`, `source()` or `this` of a model, and the marker it rendered to."""

    kind: str  # "ref" | "source" | "this"
    name: str  # the model name; "source.table" for a source
    marker: str


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
    for match in _JINJA_TAG.finditer(template):
        line = _mark_text(template[position : match.start()], line, out)
        tag = match.group(0)
        out.append(tag)
        line += tag.count("\n")
        position = match.end()
    _mark_text(template[position:], line, out)
    return "".join(out)


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


class _Relation:
    """What `ref()`/`source()`/`this` return: prints as its marker, has a relation's attributes."""

    def __init__(self, marker: str, identifier: str, schema: str = "main"):
        self.marker = marker
        self.identifier = self.name = self.table = identifier
        self.schema = schema
        self.database = "flower"
        self.type = "table"
        self.is_table = True
        self.is_view = False

    def __str__(self) -> str:
        return self.marker

    __html__ = __str__

    def render(self) -> str:
        return self.marker

    def include(self, *args: Any, **kwargs: Any) -> _Relation:
        return self

    quote = incorporate = include


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
        return self._renderer.dispatch(name)

    def quote(self, identifier: Any) -> str:
        quote = "`" if self._renderer.adapter_type in ("spark", "databricks") else '"'
        return f"{quote}{identifier}{quote}"

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)
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
# that the result parses as the same kind of SQL (an expression or a type).
_DBT_BUILTINS: dict[str, Callable[..., str]] = {
    "date_trunc": lambda datepart, date: f"date_trunc('{datepart}', {date})",
    "datediff": lambda first, second, datepart: f"date_diff('{datepart}', {first}, {second})",
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


class Renderer:
    """One Jinja environment per project: its macros loaded once, models rendered one by one."""

    def __init__(
        self,
        project_name: str,
        macro_files: list[MacroFile],
        project_vars: Mapping[str, Any],
        dialect: str = "duckdb",
    ):
        self.project_name = project_name
        self.project_vars = dict(project_vars)
        self.adapter_type = ADAPTER_TYPES.get(dialect, dialect)
        self.env = jinja2.Environment(
            extensions=[jinja2.ext.do, jinja2.ext.loopcontrols],
            undefined=_Unknown,
            autoescape=False,
            keep_trailing_newline=True,
        )
        for name in ("as_bool", "as_number", "as_text", "as_native"):
            self.env.filters[name] = lambda value: value
        self.macros: dict[str, Any] = {}
        self._calls: dict[str, RelationCall] = {}
        self._windows = 0
        self._counter = itertools.count()
        self.context: dict[str, Any] = self._base_context()
        self.macro_errors: list[tuple[str, str]] = []
        for macro_file in macro_files:
            self._load_macros(macro_file)
        # The window macros always render to markers, even when the project defines them.
        for name in WINDOW_PREDICATES:
            self.context[name] = self._window_predicate(name)
        for name in WINDOW_BOUNDS:
            self.context[name] = self._window_bound(name)

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
            "exceptions": _Exceptions(),
            "modules": {"re": re, "datetime": datetime, "itertools": itertools, "json": json},
            "log": lambda *args, **kwargs: "",
            "print": lambda *args, **kwargs: "",
            "return": self._return,
            "run_query": lambda *args, **kwargs: None,
            "statement": lambda *args, **kwargs: "",
            "load_result": lambda *args, **kwargs: None,
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
            "var": self._var,
            "env_var": self._env_var,
            "dbt": _Namespace(self._dbt_macro),
            self.project_name: _Namespace(self._project_macro),
        }

    def _load_macros(self, macro_file: MacroFile) -> None:
        blocks = [match.group(0) for match in _MACRO_BLOCK.finditer(macro_file.text)]
        if not blocks:
            return
        try:
            template = self.env.from_string("\n".join(blocks))
            module = template.make_module(vars=self.context, shared=True)
        except Exception as error:  # a broken macro file must not stop the lint of every model
            self.macro_errors.append((macro_file.path, str(error)))
            return
        for name in re.findall(r"\{%-?\s*macro\s+(\w+)", "\n".join(blocks)):
            macro = getattr(module, name, None)
            if macro is not None:
                wrapped = self._wrap(macro)
                self.macros[name] = wrapped
                self.context[name] = wrapped

    @staticmethod
    def _wrap(macro: Any) -> Callable[..., Any]:
        def call(*args: Any, **kwargs: Any) -> Any:
            try:
                return macro(*args, **kwargs)
            except _Return as returned:
                return returned.value

        return call

    @staticmethod
    def _return(value: Any = None) -> None:
        raise _Return(value)

    def _var(self, name: str, default: Any = None) -> Any:
        if name in self.project_vars:
            return self.project_vars[name]
        return default if default is not None else _Placeholder(f"var_{name}")

    @staticmethod
    def _env_var(name: str, default: Any = None) -> Any:
        # Not read from the environment: a lint result must not depend on the shell.
        return default if default is not None else f"__flower_env_{name}"

    def dispatch(self, name: str) -> Any:
        for candidate in (f"{self.adapter_type}__{name}", f"default__{name}", name):
            if candidate in self.macros:
                return self.macros[candidate]
        if name in _DBT_BUILTINS:
            return _DBT_BUILTINS[name]
        return _Placeholder(name)

    def _dbt_macro(self, name: str) -> Any:
        if name in _DBT_BUILTINS:
            return _DBT_BUILTINS[name]
        return self.macros.get(name) or _Placeholder(name)

    def _project_macro(self, name: str) -> Any:
        return self.macros.get(name) or _Placeholder(name)

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
        name = str(args[-1]) if args else str(kwargs.get("name", ""))
        marker = f"{REF_PREFIX}{next(self._counter)}"
        self._calls[marker] = RelationCall("ref", name, marker)
        return _Relation(marker, name)

    def _source(self, source_name: str, table_name: str) -> _Relation:
        marker = f"{SOURCE_PREFIX}{next(self._counter)}"
        self._calls[marker] = RelationCall("source", f"{source_name}.{table_name}", marker)
        return _Relation(marker, table_name, str(source_name))

    def render(
        self, name: str, template_text: str, known_config: Mapping[str, Any], path: str = ""
    ) -> Rendered:
        """Render one model; raises RenderError with the line of the original file."""
        self._calls = {}
        self._windows = 0
        config = _Config(known_config)

        def is_incremental() -> bool:
            return config.get("materialized") == "incremental"

        this = _Relation(THIS_MARKER, name)
        self._calls[THIS_MARKER] = RelationCall("this", name, THIS_MARKER)
        self.context.update(
            {
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
            template = self.env.from_string(mark_lines(template_text))
            rendered = template.render(self.context)
        except jinja2.TemplateSyntaxError as error:
            raise RenderError(f"Jinja syntax error: {error.message}", error.lineno) from None
        except RenderError as error:
            raise RenderError(str(error), _template_line(error)) from None
        except _Return as returned:
            rendered = str(returned.value)
        except Exception as error:
            raise RenderError(
                f"Jinja error: {type(error).__name__}: {error}", _template_line(error)
            ) from None
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
