"""Literal values out of SQL and messages before they leave for the trace store: with the question redacted, the
values it carried (`WHERE customer = 'John Smith'`) must not reach Langfuse inside the generated SQL either.

A value may also be written in double quotes, as the training data does (`name = "John Smith"`): SQLite reads a
double-quoted word that names no column as a string. With the request's schema, such a word is a value exactly when
no column has its name; without it, a double-quoted word compared with something else is taken for the value."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import sqlglot
import sqlglot.expressions as exp
from sqlglot.errors import SqlglotError

from gateway.schema_model import read_schema

REDACTED_LITERAL = "'?'"
# Quoted strings (either quote, doubled quotes inside) and numbers standing on their own.
_QUOTED = re.compile(r"'(?:[^']|'')*'?|\"(?:[^\"]|\"\")*\"?")
_NUMBER = re.compile(r"(?<![\w.])\d[\d_.,]*")
_COMPARISONS = (exp.EQ, exp.NEQ, exp.GT, exp.GTE, exp.LT, exp.LTE, exp.Like, exp.ILike, exp.Glob)


def redact_text(text: str) -> str:
    """Every quoted part and number of free text (a message, SQL that does not parse) replaced."""
    return _NUMBER.sub("?", _QUOTED.sub(REDACTED_LITERAL, text))


def redact_sql(sql: str, dialect: str = "sqlite", *, schema: str | None = None) -> str:
    """The query with every literal (and every double-quoted value) replaced by '?', its shape kept; falls back to
    `redact_text`."""
    try:
        tree = sqlglot.parse_one(sql, read=dialect)
        words = _quoted_values(tree, _columns(schema))
        redacted = tree.transform(
            lambda node: exp.Literal.string("?") if isinstance(node, exp.Literal) or id(node) in words else node,
            copy=False)  # in place: `words` holds this tree's node ids
        return redacted.sql(dialect=dialect)
    except (SqlglotError, RecursionError, ValueError):
        return redact_text(sql)


def _columns(schema: str | None) -> frozenset[str] | None:
    if not schema:
        return None
    model = read_schema(schema)
    names = frozenset(column.name.lower() for table in model.tables for column in table.columns)
    return names or None


def _quoted_word(node: exp.Expression | None) -> bool:
    return (isinstance(node, exp.Column) and not node.table and isinstance(node.this, exp.Identifier)
            and bool(node.this.quoted))


def _quoted_values(tree: exp.Expr, columns: frozenset[str] | None) -> set[int]:
    """The ids of the double-quoted words that stand for values."""
    if columns is not None:
        return {id(node) for node in tree.find_all(exp.Column)
                if _quoted_word(node) and node.name.lower() not in columns}
    words: set[int] = set()
    for node in tree.find_all(*_COMPARISONS):
        left, right = node.this, node.expression
        if _quoted_word(right):
            words.add(id(right))
        elif _quoted_word(left) and isinstance(right, exp.Column | exp.Literal):
            words.add(id(left))
    for within in tree.find_all(exp.In):
        words.update(id(item) for item in within.expressions if _quoted_word(item))
    for between in tree.find_all(exp.Between):
        words.update(id(between.args[bound]) for bound in ("low", "high") if _quoted_word(between.args.get(bound)))
    return words


def redact_check(check: Mapping[str, Any], *, schema: str | None = None) -> dict[str, Any]:
    """The check object with its query and its problems' wording redacted (they may quote the SQL)."""
    dialect = str(check.get("dialect") or "sqlite")
    redacted = dict(check)
    if isinstance(check.get("query"), str):
        redacted["query"] = redact_sql(check["query"], dialect, schema=schema)
    redacted["problems"] = [{"code": p.get("code"), "message": redact_text(str(p.get("message", "")))}
                            for p in check.get("problems", []) if isinstance(p, Mapping)]
    return redacted
