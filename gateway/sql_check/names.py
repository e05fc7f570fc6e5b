"""Small helpers over names that the walk, grounding and schema parsing share."""

from __future__ import annotations

from collections.abc import Iterable

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
