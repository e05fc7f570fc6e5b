"""SQLite's meanings that other engines spell differently, made explicit in the tree before it is written in
another dialect. sqlglot translates syntax; these are the rules where the same text means something else elsewhere
(or nothing at all). Each rule either rewrites the tree so that the target computes SQLite's answer, or raises
TranspileRefused naming the construct. One concern a module:

    scope.py        the kind of value an expression holds (int, real, text, ...), resolved against the schema
                    model (gateway/schema_model: names, quotes and declared types as the schema wrote them)
    spelling.py     names as the schema wrote them, quoted where the target needs it
    strings.py      double-quoted strings, text compared with numbers
    numbers.py      integer division, remainders, casts, round, scalar max/min, averages
    booleans.py     comparisons used as numbers, numbers used as conditions
    text.py         substr, ||, LIKE, binary collation for comparisons, ordering and grouping
    dates.py        date('now'), date(x), strftime formats
    limits.py       negative LIMIT/OFFSET, LIMIT in IN subqueries, names for derived tables
    grouping.py     DISTINCT ordered by other columns, bare columns of aggregate queries

tests/test_dialect_meaning.py checks each on the real engines (PostgreSQL, MariaDB, DuckDB) by comparing results.
"""

from __future__ import annotations

import sqlglot.expressions as exp

from gateway.schema_model import read_schema
from gateway.sql_check.meaning.booleans import booleans
from gateway.sql_check.meaning.dates import dates, formats
from gateway.sql_check.meaning.grouping import bare_columns, distinct_order
from gateway.sql_check.meaning.limits import limits
from gateway.sql_check.meaning.numbers import numbers
from gateway.sql_check.meaning.scope import Scope, column_types
from gateway.sql_check.meaning.spelling import spell_names
from gateway.sql_check.meaning.strings import strings_in_double_quotes, text_comparisons
from gateway.sql_check.meaning.text import binary_text, case_insensitive_like, concatenations, substrings

__all__ = ["before_refusals", "column_types", "make_explicit", "spell_names"]


def before_refusals(tree: exp.Expr, target: str, schema: str | None) -> None:
    """The rules that read SQLite-only functions (`datetime('now')`) before unknown functions are refused."""
    view = read_schema(schema or "")
    strings_in_double_quotes(tree, view)
    dates(tree, target, Scope(column_types(view)))


def make_explicit(tree: exp.Expr, target: str, schema: str | None) -> None:
    """Rewrite `tree` (parsed as SQLite) in place so that `target` reads it with SQLite's meaning."""
    view = read_schema(schema or "")
    scope = Scope(column_types(view))
    numbers(tree, target, scope)  # before text_comparisons, whose casts of text are SQLite's own reading
    text_comparisons(tree, target, scope)
    distinct_order(tree)
    bare_columns(tree, target)
    booleans(tree, target, scope)
    substrings(tree, target)
    concatenations(tree, target, scope)
    formats(tree, target, scope)
    case_insensitive_like(tree, target)
    binary_text(tree, target, scope)
    limits(tree, target)
