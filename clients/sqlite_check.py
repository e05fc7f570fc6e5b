"""Does a query compile against an empty SQLite database built from its schema? (`EXPLAIN`, nothing runs.)"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass

# Statements an EXPLAIN must never be allowed to prepare against anything but the throw-away database.
_DENIED_ACTIONS = frozenset({sqlite3.SQLITE_ATTACH, sqlite3.SQLITE_DETACH, sqlite3.SQLITE_PRAGMA})


def split_schema_statements(schema: str) -> list[str]:
    """Split schema text into statements at top-level `;` and before each top-level `CREATE`.

    sql-create-context separates tables with `;`, but people paste them one after the other without one.
    Quotes, brackets and parentheses are respected, so `CREATE` inside a string or a column list never splits.
    """
    statements: list[str] = []
    current: list[str] = []
    depth = 0
    quote: str | None = None
    index = 0
    length = len(schema)
    while index < length:
        char = schema[index]
        if quote is not None:
            current.append(char)
            if char == quote:
                quote = None
            index += 1
            continue
        if char in "'\"`":
            quote = char
        elif char == "[":
            quote = "]"
        elif char == "(":
            depth += 1
        elif char == ")":
            depth = max(0, depth - 1)
        elif char == ";" and depth == 0:
            statements.append("".join(current))
            current = []
            index += 1
            continue
        elif (
            depth == 0
            and schema[index : index + 6].upper() == "CREATE"
            and (index == 0 or not (schema[index - 1].isalnum() or schema[index - 1] == "_"))
            and (index + 6 == length or not (schema[index + 6].isalnum() or schema[index + 6] == "_"))
            and "".join(current).strip()
        ):
            statements.append("".join(current))
            current = []
        current.append(char)
        index += 1
    statements.append("".join(current))
    return [statement.strip() for statement in statements if statement.strip()]


@dataclass(frozen=True)
class CompileResult:
    """`compiles` is None when the schema itself could not be built, so the query was not tried."""

    compiles: bool | None
    error: str | None = None
    schema_error: str | None = None


def _authorize(action: int, *_: object) -> int:
    return sqlite3.SQLITE_DENY if action in _DENIED_ACTIONS else sqlite3.SQLITE_OK


def compile_in_sqlite(sql: str, schema: str) -> CompileResult:
    """Create the schema's tables in an in-memory database, then `EXPLAIN` the query there."""
    connection = sqlite3.connect(":memory:")
    connection.set_authorizer(_authorize)
    try:
        for statement in split_schema_statements(schema):
            try:
                connection.execute(statement)
            except sqlite3.Error as exc:
                return CompileResult(compiles=None, schema_error=f"{type(exc).__name__}: {exc}")
        query = sql.strip().rstrip(";").strip()
        if not query:
            return CompileResult(compiles=False, error="empty query")
        try:
            connection.execute(f"EXPLAIN {query}")
        except (sqlite3.Error, sqlite3.Warning) as exc:
            # sqlite3.Warning/ProgrammingError: more than one statement, which is not one compilable query.
            return CompileResult(compiles=False, error=f"{type(exc).__name__}: {exc}")
        return CompileResult(compiles=True)
    finally:
        connection.close()
