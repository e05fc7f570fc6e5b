"""Does a query compile against an empty SQLite database built from its schema? (`EXPLAIN`, nothing runs.)
Also the schema splitter that the normalised match (sql_match.py) reads tables with."""

from __future__ import annotations

from dataclasses import dataclass


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
