"""Run a query on synthesized instances and reduce what it returns to a comparable signature.

Each run gets a fresh in-memory copy of the instance (a query can't change what the next one sees), SQLite's
authorizer (no ATTACH, no PRAGMA, reads only) and a step budget (a cross join of every table must not hold the
request up). Results are compared as multisets unless the query orders its rows at the top level.
"""

from __future__ import annotations

import math
import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass

import sqlglot
import sqlglot.expressions as exp
from sqlglot.errors import SqlglotError

MAX_ROWS = 500  # rows compared per instance; a query returning more is compared on its first rows
STEP_BUDGET = 200_000  # SQLite virtual-machine steps per query and instance
_PROGRESS_EVERY = 1_000
_READS = frozenset({sqlite3.SQLITE_SELECT, sqlite3.SQLITE_READ, sqlite3.SQLITE_FUNCTION, sqlite3.SQLITE_RECURSIVE})


@dataclass(frozen=True)
class Outcome:
    """What a query returned on every instance (`results`), or why it could not run (`error`)."""

    results: tuple[tuple[tuple[object, ...], ...], ...] = ()
    error: str | None = None

    @property
    def empty_everywhere(self) -> bool:
        return self.error is None and all(not rows for rows in self.results)


def ordered(sql: str) -> bool:
    """True when the query orders its result at the top level (then row order is part of the answer)."""
    try:
        tree = sqlglot.parse_one(sql, read="sqlite")
    except (SqlglotError, RecursionError, ValueError):
        return False
    return isinstance(tree, exp.Query) and tree.args.get("order") is not None


def _authorize(action: int, *_: object) -> int:
    return sqlite3.SQLITE_OK if action in _READS else sqlite3.SQLITE_DENY


def _value(value: object) -> object:
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        return round(value, 6) if not value.is_integer() else int(value)
    if isinstance(value, bytes):
        return value.hex()
    return value


def row_sort_key(row: tuple[object, ...]) -> tuple[tuple[int, str], ...]:
    """A total order on rows whose cells may mix types and NULLs."""
    return tuple((0, "") if cell is None else (1, f"{type(cell).__name__}:{cell!r}") for cell in row)


def run(sql: str, images: Sequence[bytes], keep_order: bool | None = None) -> Outcome:
    """The query's rows on each instance, normalised (floats rounded; order kept when the query orders, or as
    `keep_order` says: a judge compares a prediction the way the reference's own order rule says)."""
    keep_order = ordered(sql) if keep_order is None else keep_order
    results = []
    for image in images:
        connection = sqlite3.connect(":memory:", isolation_level=None)
        try:
            connection.deserialize(image)
            steps = [0]

            def over_budget(steps: list[int] = steps) -> int:
                steps[0] += _PROGRESS_EVERY
                return int(steps[0] > STEP_BUDGET)

            connection.set_progress_handler(over_budget, _PROGRESS_EVERY)
            connection.set_authorizer(_authorize)
            rows = connection.execute(sql).fetchmany(MAX_ROWS)
        except (sqlite3.Error, OverflowError, ValueError) as error:
            return Outcome(error=f"{type(error).__name__}: {error}"[:200])
        finally:
            connection.close()
        normalised = [tuple(_value(cell) for cell in row) for row in rows]
        results.append(tuple(normalised if keep_order else sorted(normalised, key=row_sort_key)))
    return Outcome(tuple(results))
