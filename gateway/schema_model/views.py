"""CREATE VIEW (and CREATE TABLE ... AS SELECT): the columns a view gives, from its explicit column list or its
query's select list, stars expanded over the tables read before it. Views are few, so their query is parsed with
sqlglot, in the first dialect that reads it."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

import sqlglot.expressions as exp
from sqlglot.dialects.dialect import Dialect
from sqlglot.errors import SqlglotError

from gateway.schema_model.model import Column, Table
from gateway.schema_model.names import QUALIFIED

# (Its group names are its own: KIND, in kinds.py, holds it with CREATE_TABLE.)
CREATE_VIEW = re.compile(
    r"\s*CREATE\s+(?:OR\s+(?:REPLACE|ALTER)\s+)?(?:(?:TEMP|TEMPORARY|MATERIALIZED|RECURSIVE|SECURE|"
    r"ALGORITHM\s*=\s*\w+|DEFINER\s*=\s*\S+|SQL\s+SECURITY\s+\w+)\s+)*VIEW\s+"
    rf"(?P<view_exists>IF\s+NOT\s+EXISTS\s+)?(?P<view_name>{QUALIFIED})\s*(?P<view_columns>\()?")
# In the upper-cased text: where the query of a view or of CREATE TABLE ... AS starts.
AS_QUERY = re.compile(r"(?:\bWITH\s*\([^()]*\)\s*)?\bAS\s+(?=\(?\s*(?:SELECT|WITH|VALUES|TABLE)\b)|\bAS\s*(?=\()")
_READERS = ("postgres", "mysql", "tsql", "sqlite", "duckdb")

Resolve = Callable[[str, str], Table | None]


@dataclass(frozen=True)
class ViewColumns:
    columns: tuple[Column, ...] | None  # None: could not be told (the reason says why)
    types_known: bool = True
    reason: str = ""


def query_columns(query_text: str, resolve: Resolve, explicit: tuple[str, ...] = ()) -> ViewColumns:
    """The output columns of a view's query; `resolve(schema, name)` gives the tables read so far."""
    tree = _parse(query_text)
    if tree is None:
        if explicit:
            return ViewColumns(tuple(Column(name) for name in explicit), types_known=False)
        return ViewColumns(None, reason="its query could not be parsed")
    select: exp.Expr = tree
    while isinstance(select, exp.SetOperation):
        select = select.left
    if isinstance(select, exp.Subquery):
        select = select.unnest()
    if not isinstance(select, exp.Select):
        if explicit:
            return ViewColumns(tuple(Column(name) for name in explicit), types_known=False)
        return ViewColumns(None, reason="its query is not a plain SELECT")
    sources = _sources(select, resolve)
    columns: list[Column] = []
    known = True
    for projection in select.expressions:
        found = _projection(projection, sources)
        if found is None:
            return ViewColumns(None, reason=f"the select item {projection.sql()[:60]} can't be resolved")
        for column, typed in found:
            columns.append(column)
            known = known and typed
    if explicit:
        if len(explicit) != len(columns):
            return ViewColumns(tuple(Column(name) for name in explicit), types_known=False)
        columns = [Column(name, column.type) for name, column in zip(explicit, columns, strict=True)]
    return ViewColumns(tuple(columns), types_known=known)


_WITH_DATA = re.compile(r"\s+WITH\s+(?:NO\s+)?DATA\s*$", re.IGNORECASE)  # a materialized view's last words


def _parse(text: str) -> exp.Query | None:
    text = _WITH_DATA.sub("", text.strip().rstrip(";"))
    for dialect in _READERS:
        try:
            parsed = [tree for tree in Dialect.get_or_raise(dialect).parse(text) if tree is not None]
        except (SqlglotError, RecursionError, ValueError):
            continue
        if len(parsed) == 1 and isinstance(parsed[0], exp.Query):
            return parsed[0]
    return None


_Source = tuple[Column, ...] | None


def from_items(select: exp.Select) -> list[exp.Expr]:
    """The tables and subqueries `select` reads from: its FROM items, then its JOINs'."""
    from_ = select.args.get("from_")
    nodes: list[exp.Expr] = []
    if isinstance(from_, exp.From):
        nodes.append(from_.this)
        nodes.extend(from_.expressions)
    nodes.extend(join.this for join in select.args.get("joins") or ())
    return nodes


def _sources(select: exp.Select, resolve: Resolve) -> dict[str, _Source]:
    """Alias (lower-cased) -> the columns of that FROM / JOIN item (None: unknown)."""
    sources: dict[str, _Source] = {}
    nodes = from_items(select)
    for node in nodes:
        # pg_dump prints `FROM (a x JOIN b y ON ...)`: a parenthesised table that carries its own joins.
        if isinstance(node, exp.Subquery) and isinstance(node.this, exp.Table) and node.this.args.get("joins"):
            nodes.extend([node.this, *(join.this for join in node.this.args["joins"])])
            continue
        alias = node.alias_or_name.lower()
        if isinstance(node, exp.Table) and isinstance(node.this, exp.Identifier):
            table = resolve(node.db, node.name)
            sources[alias] = table.columns if table is not None else None
        elif isinstance(node, exp.Subquery) and isinstance(node.this, exp.Select):
            inner = [name for name in node.this.named_selects if name]
            sources[alias] = tuple(Column(name) for name in inner) if len(inner) == len(node.this.expressions) \
                else None
        else:
            sources[alias] = None
    return sources


def _projection(node: exp.Expr, sources: dict[str, _Source]) -> list[tuple[Column, bool]] | None:
    if isinstance(node, exp.Star):
        return _star(list(sources.values()))
    if isinstance(node, exp.Column) and isinstance(node.this, exp.Star):
        return _star([sources.get(node.table.lower())])
    name = node.alias_or_name
    if not name:
        return None
    inner = node.this if isinstance(node, exp.Alias) else node
    if isinstance(inner, exp.Column) and not isinstance(inner.this, exp.Star):
        source_column = _source_column(inner, sources)
        if source_column is not None:
            return [(Column(name, source_column.type), True)]
    if isinstance(inner, exp.Cast):
        return [(Column(name, inner.to.sql()), True)]
    return [(Column(name), False)]


def _star(sources: list[_Source]) -> list[tuple[Column, bool]] | None:
    if not sources or any(source is None for source in sources):
        return None
    return [(Column(column.name, column.type), True) for source in sources if source for column in source]


def _source_column(column: exp.Column, sources: dict[str, _Source]) -> Column | None:
    wanted = column.name.lower()
    candidates = [sources.get(column.table.lower())] if column.table else list(sources.values())
    for source in candidates:
        for known in source or ():
            if known.name.lower() == wanted:
                return known
    return None
