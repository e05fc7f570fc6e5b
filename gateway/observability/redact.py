"""Literal values out of SQL and messages before they leave for the trace store: with the question redacted, the
values it carried (`WHERE customer = 'John Smith'`) must not reach Langfuse inside the generated SQL either."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import sqlglot
import sqlglot.expressions as exp
from sqlglot.errors import SqlglotError

REDACTED_LITERAL = "'?'"
# Quoted strings (either quote, doubled quotes inside) and numbers standing on their own.
_QUOTED = re.compile(r"'(?:[^']|'')*'?|\"(?:[^\"]|\"\")*\"?")
_NUMBER = re.compile(r"(?<![\w.])\d[\d_.,]*")


def redact_text(text: str) -> str:
    """Every quoted part and number of free text (a message, SQL that does not parse) replaced."""
    return _NUMBER.sub("?", _QUOTED.sub(REDACTED_LITERAL, text))


def redact_sql(sql: str, dialect: str = "sqlite") -> str:
    """The query with every literal replaced by '?', its shape kept; falls back to `redact_text`."""
    try:
        tree = sqlglot.parse_one(sql, read=dialect)
        redacted = tree.transform(lambda node: exp.Literal.string("?") if isinstance(node, exp.Literal) else node)
        return redacted.sql(dialect=dialect)
    except (SqlglotError, RecursionError, ValueError):
        return redact_text(sql)


def redact_check(check: Mapping[str, Any]) -> dict[str, Any]:
    """The check object with its query and its problems' wording redacted (they may quote the SQL)."""
    dialect = str(check.get("dialect") or "sqlite")
    redacted = dict(check)
    if isinstance(check.get("query"), str):
        redacted["query"] = redact_sql(check["query"], dialect)
    redacted["problems"] = [{"code": p.get("code"), "message": redact_text(str(p.get("message", "")))}
                            for p in check.get("problems", []) if isinstance(p, Mapping)]
    return redacted
