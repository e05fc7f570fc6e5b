"""Does a query compile against an empty SQLite database built from its schema? (`EXPLAIN`, nothing runs.)"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class CompileResult:
    """`compiles` is None when the schema itself could not be built, so the query was not tried."""

    compiles: bool | None
    error: str | None = None
    schema_error: str | None = None


def compile_in_sqlite(sql: str, schema: str) -> CompileResult:
    """Compile the query against an empty SQLite database built from the schema (`EXPLAIN`, nothing runs).

    The gateway's own compile step (gateway/sql_check/compile.py), so the eval and the gateway agree on what
    compiles; this keeps the eval's result shape."""
    from gateway.sql_check.compile import compile_sql  # the eval's only use of the gateway package

    query = sql.strip().rstrip(";").strip()
    if not query:
        return CompileResult(compiles=False, error="empty query")
    result = compile_sql(query, schema=schema, dialect="sqlite")
    if result.compiled is None:
        return CompileResult(compiles=None, schema_error=result.message)
    return CompileResult(compiles=result.compiled, error=result.message)
