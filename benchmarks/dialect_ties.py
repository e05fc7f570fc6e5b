"""Ties under ORDER BY: rows with equal sort keys may come in any order, and ORDER BY ... LIMIT n may keep any of
the tied rows at the cut. SQLite's pick is an accident of its plan (its GROUP BY sorts by the group key first), so
an engine's different pick is still a result SQLite's query allows. This checks exactly that: the query runs in
SQLite without its LIMIT/OFFSET and with its sort keys as extra columns, and the engine's rows must be, position by
position, rows of SQLite's result with the same keys (every row above the cut, any of the tied ones at it)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from typing import Any

import sqlglot
import sqlglot.expressions as exp
from sqlglot.errors import SqlglotError

from benchmarks.dialect_data import comparable

_KEY = "sqlgate_sort_key_{}"


def with_keys(sql: str) -> tuple[str, int, int | None, int] | None:
    """(the query without LIMIT/OFFSET and with its sort keys appended, number of its own columns, limit, offset),
    or None where this can't be done faithfully (no ORDER BY, DISTINCT, set operations, computed limits)."""
    try:
        tree = sqlglot.parse_one(sql, read="sqlite")
    except (SqlglotError, RecursionError, ValueError):
        return None
    order = tree.args.get("order") if isinstance(tree, exp.Select) else None
    if not isinstance(tree, exp.Select) or order is None or tree.args.get("distinct") is not None:
        return None
    if any(isinstance(item, exp.Star) or (isinstance(item, exp.Column) and isinstance(item.this, exp.Star))
           for item in tree.expressions):
        return None
    limit, offset = _number(tree.args.get("limit")), _number(tree.args.get("offset"))
    if limit == -1 or offset == -1:
        return None
    items = list(tree.expressions)
    aliases = {item.alias.lower(): item.this for item in items if isinstance(item, exp.Alias)}
    keys = []
    for ordered in order.expressions:
        key = ordered.this
        if isinstance(key, exp.Literal) and not key.is_string and key.this.isdigit():
            position = int(key.this) - 1
            if not 0 <= position < len(items):
                return None
            chosen = items[position]
            key = chosen.this if isinstance(chosen, exp.Alias) else chosen
        elif isinstance(key, exp.Column) and not key.table and key.name.lower() in aliases:
            key = aliases[key.name.lower()]
        keys.append(exp.alias_(key.copy(), _KEY.format(len(keys))))
    variant = tree.copy()
    variant.set("limit", None)
    variant.set("offset", None)
    variant.set("expressions", [*[item.copy() for item in items], *keys])
    return variant.sql("sqlite"), len(items), limit, offset or 0


def _number(node: exp.Expr | None) -> int | None:
    value = node.args.get("expression") if isinstance(node, exp.Limit | exp.Offset) else None
    if value is None:
        return None
    if isinstance(value, exp.Literal) and not value.is_string and value.this.isdigit():
        return int(value.this)
    return -1  # computed or negative: not handled here


def allowed_by_ties(full: Sequence[Sequence[Any]], width: int, limit: int | None, offset: int,
                    got: Sequence[tuple[Any, ...]]) -> bool:
    """Is `got` (the engine's rows, in its order) the window [offset, offset+limit) of SQLite's full ordered result
    up to reordering within groups of equal sort keys?"""
    rows = [tuple(row) for row in comparable(full, ordered=True)]
    values = [row[:width] for row in rows]
    keys = [row[width:] for row in rows]
    end = len(rows) if limit is None else min(len(rows), offset + limit)
    if len(got) != max(0, end - offset):
        return False
    position = offset
    while position < end:
        group_end = position
        while group_end < len(rows) and keys[group_end] == keys[position]:
            group_end += 1
        group_start = position
        while group_start > 0 and keys[group_start - 1] == keys[position]:
            group_start -= 1
        # The window's positions in this tie group may hold any of the group's rows.
        taken = got[position - offset:min(group_end, end) - offset]
        if Counter(taken) - Counter(values[group_start:group_end]):
            return False
        position = min(group_end, end)
    return True


def nested_tie_variants(sql: str, run: Callable[[str], Sequence[Sequence[Any]]]) -> list[str]:
    """A value subquery `(SELECT k ... ORDER BY c LIMIT 1)` whose first row is tied on this data may give any of the
    tied rows' k: the outer query with each of them in its place (SQLite text), or [] where there is no such tie."""
    try:
        tree = sqlglot.parse_one(sql, read="sqlite")
    except (SqlglotError, RecursionError, ValueError):
        return []
    for position, subquery in enumerate(tree.find_all(exp.Subquery)):
        inner = subquery.this
        if not isinstance(inner, exp.Select) or len(inner.expressions) != 1 or _number(inner.args.get("limit")) != 1:
            continue
        keyed = with_keys(inner.sql("sqlite"))
        if keyed is None:
            continue
        try:
            full = comparable(run(keyed[0]), ordered=True)
        except Exception:  # correlated with the outer query: it does not run alone
            continue
        picks = [row[0] for row in full if full and row[keyed[1]:] == full[0][keyed[1]:]]
        if len(picks) < 2:
            continue
        variants = []
        for pick in dict.fromkeys(picks):
            copy = tree.copy()
            target = list(copy.find_all(exp.Subquery))[position]
            target.replace(exp.Subquery(this=exp.select(_literal(pick))))
            variants.append(copy.sql("sqlite"))
        return variants
    return []


def _literal(value: Any) -> exp.Expr:
    if value is None:
        return exp.Null()
    if isinstance(value, int | float):
        return exp.Literal.number(value) if value >= 0 else exp.Neg(this=exp.Literal.number(-value))
    return exp.Literal.string(str(value))
