"""Small helpers over names that the walk, grounding and schema parsing share."""

from __future__ import annotations

from collections.abc import Iterable

import sqlglot
import sqlglot.expressions as exp

# None: the source's columns are not known, so anything resolves against it.
Columns = frozenset[str] | None


def lower_set(names: Iterable[str]) -> frozenset[str]:
    return frozenset(name.lower() for name in names if name)


def unique(names: Iterable[str]) -> tuple[str, ...]:
    """Names in first-seen order, without case-insensitive repeats or empty names."""
    seen: set[str] = set()
    kept = []
    for name in names:
        if name and name.lower() not in seen:
            seen.add(name.lower())
            kept.append(name)
    return tuple(kept)


def query_columns(query: exp.Expr) -> Columns:
    """The output column names of a query, or None when a star makes them unknowable without a schema."""
    if not isinstance(query, exp.Query):
        return None
    select = query
    while isinstance(select, exp.SetOperation):
        select = select.left
    if not isinstance(select, exp.Select):
        return None
    if any(isinstance(e, exp.Star) or (isinstance(e, exp.Column) and isinstance(e.this, exp.Star))
           for e in select.expressions):
        return None
    return lower_set(select.named_selects)


def names_in_query(sql: str, dialect: str, name: str) -> bool:
    """Is `name` (as an engine quotes it: `x`, `t.x`) a table or column the query, as written, refers to?

    An engine's "no such column" after a translation is only the query's fault when the name is the query's own;
    a translator can turn a keyword into a column (MySQL's TIMESTAMPDIFF(DAY, ...) becomes a column DAY)."""
    wanted = name.strip().strip('"`[]').rsplit(".", 1)[-1].strip('"`[]').lower()
    try:
        tree = sqlglot.parse_one(sql, read=dialect)
    except Exception:
        return False
    named = {node.name.lower() for node in tree.find_all(exp.Column, exp.Table)}
    return wanted in named
