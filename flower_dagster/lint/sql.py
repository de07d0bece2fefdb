"""What the rules need to know about a model's SQL, read from sqlglot's syntax tree.

Pure functions over a parsed statement: which relations a FROM/JOIN names and whether each is a
CTE visible at that point (a CTE is not visible in its own body, nor before its definition; an
inner WITH shadows an outer one; `schema.table` is never a CTE), which window filters apply to a
relation (in the select that reads it, or on every path through the CTEs and subqueries that
carry it), and the column list of the final select with `*` expanded through CTEs.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlglot import exp

from flower_dagster.lint.render import WINDOW_BOUNDS, WINDOW_PREDICATES

_MAX_DEPTH = 30
_COMPARISONS = (exp.GT, exp.GTE, exp.LT, exp.LTE, exp.EQ)


@dataclass(frozen=True)
class WindowUse:
    """A window filter: the column it filters (lower case) and its table qualifier, if any."""

    column: str
    qualifier: str | None


@dataclass(frozen=True)
class OutputColumn:
    name: str | None  # None: an expression without an alias
    node: exp.Expression


def offset_of(node: exp.Expression) -> int | None:
    """The offset in the rendered SQL where `node` starts (from sqlglot's token positions)."""
    if isinstance(node, exp.Alias) and node.args.get("alias") is not None:
        start = node.args["alias"].meta.get("start")
        if start is not None:
            return start
    starts = [
        found.meta["start"]
        for found in node.walk()
        if isinstance(found, exp.Expression) and "start" in found.meta
    ]
    return min(starts) if starts else None


def relations(tree: exp.Expression) -> list[exp.Table]:
    """Every named relation in a FROM or JOIN (table functions such as read_csv excluded)."""
    return [
        table
        for table in tree.find_all(exp.Table)
        if isinstance(table.this, exp.Identifier) and isinstance(table.parent, exp.From | exp.Join)
    ]


def visible_cte(table: exp.Table) -> exp.CTE | None:
    """The CTE that `table` names at its place in the statement, if any."""
    if table.args.get("db") or table.args.get("catalog"):
        return None
    name = table.name.lower()
    child: exp.Expression = table
    node = table.parent
    handled: exp.Expression | None = None
    while node is not None:
        if isinstance(node, exp.With):
            ctes = list(node.expressions)
            if isinstance(child, exp.CTE):
                index = next(i for i, cte in enumerate(ctes) if cte is child)
                ctes = ctes[: index + 1] if node.args.get("recursive") else ctes[:index]
            found = _named(ctes, name)
            if found is not None:
                return found
            handled = node.parent
        elif node is not handled:
            with_ = node.args.get("with_")
            if isinstance(with_, exp.With) and child is not with_:
                found = _named(list(with_.expressions), name)
                if found is not None:
                    return found
        child, node = node, node.parent
    return None


def _named(ctes: list[exp.CTE], name: str) -> exp.CTE | None:
    for cte in reversed(ctes):
        if cte.alias.lower() == name:
            return cte
    return None


def _reading_select(source: exp.Expression) -> exp.Select | None:
    """The select whose FROM or JOIN holds `source` (a table or an aliased subquery)."""
    holder = source.parent
    if isinstance(holder, exp.From | exp.Join) and isinstance(holder.parent, exp.Select):
        return holder.parent
    return None


def _column_of(node: exp.Expression | None) -> WindowUse | None:
    if node is None:
        return None
    column = node if isinstance(node, exp.Column) else node.find(exp.Column)
    if column is None:
        return None
    return WindowUse(column.name.lower(), column.table.lower() or None)


def select_windows(select: exp.Select) -> list[WindowUse]:
    """The window filters in a select's WHERE and JOIN conditions (not in nested selects)."""
    conditions = [select.args.get("where")]
    conditions += [join.args.get("on") for join in select.args.get("joins") or []]
    found: list[WindowUse] = []
    for condition in conditions:
        if condition is None:
            continue
        for call in condition.find_all(exp.Anonymous):
            if call.find_ancestor(exp.Select) is not select:
                continue
            name = call.name.lower()
            use = None
            if name in WINDOW_PREDICATES:
                use = _column_of(call.expressions[0] if call.expressions else None)
            elif name in WINDOW_BOUNDS and isinstance(call.parent, _COMPARISONS):
                comparison = call.parent
                other = comparison.left if comparison.right is call else comparison.right
                use = _column_of(other)
            if use is not None:
                found.append(use)
    return found


def windows_for(source: exp.Expression, depth: int = 0) -> list[WindowUse] | None:
    """The windows that filter `source` on every path to the result; None if a path has none.

    A window in the select that reads the relation counts when it names the relation's alias
    (or no qualifier). Otherwise the relation is carried by a CTE (every reader of the CTE must
    apply the window) or by a subquery in FROM (the outer select must apply it).
    """
    if depth > _MAX_DEPTH:
        return None
    select = _reading_select(source)
    if select is None:
        return None
    alias = source.alias_or_name.lower()
    windows = [
        use for use in select_windows(select) if use.qualifier is None or use.qualifier == alias
    ]
    if windows:
        return windows
    carrier: exp.Expression = select
    while isinstance(carrier.parent, exp.SetOperation | exp.Subquery) and not isinstance(
        carrier.parent.parent, exp.From | exp.Join
    ):
        carrier = carrier.parent
    parent = carrier.parent
    if isinstance(parent, exp.Subquery) and isinstance(parent.parent, exp.From | exp.Join):
        return windows_for(parent, depth + 1)
    if isinstance(parent, exp.CTE):
        scope = parent.parent.parent if isinstance(parent.parent, exp.With) else None
        if scope is None:
            return None
        readers = [
            table
            for table in relations(scope)
            if table.name.lower() == parent.alias.lower() and visible_cte(table) is parent
        ]
        found: list[WindowUse] = []
        for reader in readers:
            through = windows_for(reader, depth + 1)
            if through is None:
                return None
            found += through
        return found
    return None


def final_columns(tree: exp.Expression, depth: int = 0) -> list[OutputColumn] | None:
    """The columns of a query's result in order, `*` expanded through CTEs; None if unknown."""
    if depth > _MAX_DEPTH:
        return None
    node = tree
    while True:
        if isinstance(node, exp.Subquery):
            node = node.this
        elif isinstance(node, exp.SetOperation):
            node = node.this  # a union's columns are named by its first branch
        else:
            break
    if not isinstance(node, exp.Select):
        return None
    columns: list[OutputColumn] = []
    for projection in node.expressions:
        star = isinstance(projection, exp.Star) or (
            isinstance(projection, exp.Column) and isinstance(projection.this, exp.Star)
        )
        if not star:
            columns.append(OutputColumn(_output_name(projection), projection))
            continue
        star_node = projection if isinstance(projection, exp.Star) else projection.this
        if any(star_node.args.get(key) for key in ("except_", "replace", "rename", "ilike")):
            return None
        qualifier = projection.table.lower() if isinstance(projection, exp.Column) else ""
        expanded = _star_columns(node, qualifier, depth)
        if expanded is None:
            return None
        columns += expanded
    return columns


def _output_name(projection: exp.Expression) -> str | None:
    if isinstance(projection, exp.Alias):
        return projection.alias.lower()
    if isinstance(projection, exp.Column):
        return projection.name.lower()
    return None


def _star_columns(select: exp.Select, qualifier: str, depth: int) -> list[OutputColumn] | None:
    sources: list[exp.Expression] = []
    from_ = select.args.get("from_")
    if from_ is not None:
        sources.append(from_.this)
    sources += [join.this for join in select.args.get("joins") or []]
    if qualifier:
        sources = [source for source in sources if source.alias_or_name.lower() == qualifier]
    if not sources:
        return None
    columns: list[OutputColumn] = []
    for source in sources:
        if isinstance(source, exp.Subquery):
            found = final_columns(source.this, depth + 1)
        elif isinstance(source, exp.Table) and (cte := visible_cte(source)) is not None:
            found = final_columns(cte.this, depth + 1)
        else:
            found = None
        if found is None:
            return None
        columns += found
    return columns
