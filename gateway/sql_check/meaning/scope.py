"""What kind of value an expression of the SQLite query holds: column references resolved through the FROM and
JOIN items of the query they sit in (then of the queries around it) to the schema's declared type, and the kinds
of what SQLite's operators and functions return. SQLite decides integer division, comparisons and casts by these.

Kinds: "int", "real", "text", "bool" (a BOOLEAN column: 0/1 in SQLite, a boolean elsewhere), "num" (NUMERIC or
DECIMAL: integer or real per value), "date", or None (not known)."""

from __future__ import annotations

import functools
from collections.abc import Iterator, Mapping
from typing import Literal, TypeVar

import sqlglot.expressions as exp

from gateway.schema_model import SchemaModel

Kind = Literal["int", "real", "text", "bool", "num", "date"]
_E = TypeVar("_E", bound=exp.Expr)

PREDICATES = (exp.Predicate, exp.Connector, exp.Not, exp.Boolean)
_TEXT_FUNCTIONS = (exp.Upper, exp.Lower, exp.Substring, exp.Trim, exp.DPipe, exp.Concat, exp.GroupConcat,
                   exp.TimeToStr, exp.Initcap)
_INT_FUNCTIONS = (exp.Count, exp.Length, exp.StrPosition, exp.Sign)


def affinity(declared: str | None) -> Kind | None:
    """SQLite's column affinity rules (datatype3.html 3.1), with the families other engines type differently."""
    if declared is None:
        return None
    upper = declared.upper()
    if "INT" in upper:
        return "int"
    if any(word in upper for word in ("CHAR", "CLOB", "TEXT")):
        return "text"
    if any(word in upper for word in ("REAL", "FLOA", "DOUB")):
        return "real"
    if "BOOL" in upper:
        return "bool"
    if "DATE" in upper or "TIME" in upper:
        return "date"
    if not upper.strip() or "BLOB" in upper:
        return None
    return "num"


@functools.lru_cache(maxsize=64)
def column_types(model: SchemaModel) -> Mapping[str, Mapping[str, str]]:
    """Table -> column -> declared type (lower-cased names; the first table of a name wins)."""
    types: dict[str, dict[str, str]] = {}
    for table in model.tables:
        columns = types.setdefault(table.name.lower(), {})
        for column in table.columns:
            columns.setdefault(column.name.lower(), column.type)
    return types


class Scope:
    """Resolves column references of one query tree against the schema's declared types."""

    def __init__(self, types: Mapping[str, Mapping[str, str]]) -> None:
        self._types = types

    def declared(self, node: exp.Expr) -> str | None:
        """The declared type of a column reference, or None when it is not unambiguous."""
        if isinstance(node, exp.Alias):
            node = node.this
        if not isinstance(node, exp.Column) or isinstance(node.this, exp.Star):
            return None
        name, qualifier = node.name.lower(), node.table.lower()
        scope = node.find_ancestor(exp.Select)
        while scope is not None:
            sources = direct_tables(scope)
            if qualifier:
                tables = [table for alias, table in sources if alias == qualifier]
            else:
                tables = [table for _, table in sources if name in self._types.get(table, {})]
            if tables:
                found = {self._types.get(table, {}).get(name) for table in tables}
                return found.pop() if len(found) == 1 else None
            scope = scope.find_ancestor(exp.Select)
        return None

    def kind(self, node: exp.Expr | None) -> Kind | None:
        if node is None:
            return None
        if isinstance(node, exp.Paren | exp.Alias):
            return self.kind(node.this)
        if isinstance(node, exp.Column):
            return affinity(self.declared(node))
        if isinstance(node, exp.Literal):
            if node.is_string:
                return "text"
            return "real" if any(mark in node.this.lower() for mark in (".", "e")) else "int"
        if isinstance(node, exp.Neg | exp.Abs):
            return self.kind(node.this)
        if isinstance(node, PREDICATES):
            return "bool"
        if isinstance(node, _INT_FUNCTIONS):
            return "int"
        if isinstance(node, _TEXT_FUNCTIONS):
            return "text"
        if isinstance(node, exp.Avg | exp.Round):
            return "real"
        if isinstance(node, exp.Cast):
            return affinity(node.to.sql("sqlite")) or ("text" if node.to.is_type(*exp.DataType.TEXT_TYPES) else None)
        if isinstance(node, exp.Sum | exp.Max | exp.Min | exp.AnyValue):
            return self.kind(node.this)
        if isinstance(node, exp.Greatest | exp.Least | exp.Coalesce | exp.Case | exp.If):
            return self._common([*_branches(node)])
        if isinstance(node, exp.Add | exp.Sub | exp.Mul | exp.Div | exp.Mod):
            return _arithmetic(self.kind(node.this), self.kind(node.expression))
        if isinstance(node, exp.Subquery) and isinstance(node.this, exp.Select) and len(node.this.expressions) == 1:
            return self.kind(node.this.expressions[0])
        return None

    def _common(self, nodes: list[exp.Expr]) -> Kind | None:
        kinds = {self.kind(node) for node in nodes if not isinstance(node, exp.Null)}
        if kinds == {"int", "real"}:
            return "real"
        return kinds.pop() if len(kinds) == 1 else None


def _branches(node: exp.Expr) -> Iterator[exp.Expr]:
    if isinstance(node, exp.Case):
        yield from (branch.args["true"] for branch in node.args.get("ifs") or ())
        if node.args.get("default") is not None:
            yield node.args["default"]
    elif isinstance(node, exp.If):
        yield node.args["true"]
        if node.args.get("false") is not None:
            yield node.args["false"]
    else:
        yield node.this
        yield from node.expressions


def _arithmetic(left: Kind | None, right: Kind | None) -> Kind | None:
    numeric = {"int", "bool"}
    if left in numeric and right in numeric:
        return "int"
    if {left, right} <= {"int", "bool", "real"}:
        return "real"
    return None


def direct_tables(select: exp.Select) -> list[tuple[str, str]]:
    """(alias or name, table name) of the tables `select` reads directly, lower-cased."""
    items: list[exp.Expr] = []
    from_ = select.args.get("from_")
    if isinstance(from_, exp.From):
        items.append(from_.this)
    items += [join.this for join in select.args.get("joins") or ()]
    return [(item.alias_or_name.lower(), item.name.lower()) for item in items if isinstance(item, exp.Table)]


def query_selects(query: exp.Expr | None) -> list[exp.Select]:
    """The SELECTs whose rows `query` returns: itself, a subquery's, each side of a UNION, INTERSECT or EXCEPT."""
    if isinstance(query, exp.Select):
        return [query]
    if isinstance(query, exp.Subquery):
        return query_selects(query.this)
    if isinstance(query, exp.SetOperation):
        return [*query_selects(query.this), *query_selects(query.expression)]
    return []


def own(clause: exp.Expr, select: exp.Select, kind: type[_E]) -> Iterator[_E]:
    """Nodes of `kind` in `clause` that belong to `select`, not to a subquery inside it."""
    for node in clause.find_all(kind):
        if node.find_ancestor(exp.Select) is select or node is select:
            yield node


def inside(node: exp.Expr, stop: exp.Expr, kinds: tuple[type[exp.Expr], ...]) -> bool:
    parent = node.parent
    while parent is not None and parent is not stop:
        if isinstance(parent, kinds):
            return True
        parent = parent.parent
    return False


def parent_skipping_parens(node: exp.Expr) -> exp.Expr | None:
    parent = node.parent
    while isinstance(parent, exp.Paren):
        parent = parent.parent
    return parent
