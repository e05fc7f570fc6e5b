"""The request's schema as the analyst's database in a target dialect holds it: each table with the names as the
schema wrote them (quoted where it quoted them, for engines that fold case) and each column's declared type mapped
by SQLite's affinity to a type of the target that holds the same values (an INTEGER as a 64-bit integer, a REAL as
a double, text as text). The target engines compile against these tables, and the benchmark fills them."""

from __future__ import annotations

import functools

import sqlglot.expressions as exp

from gateway.schema_model import Table, read_schema
from gateway.sql_check.meaning.scope import affinity
from gateway.sql_check.meaning.spelling import written_identifier
from gateway.sql_check.parsing import get_dialect

_TYPES: dict[str, dict[str | None, str]] = {
    "postgres": {"int": "BIGINT", "real": "DOUBLE PRECISION", "num": "NUMERIC", "text": "TEXT", "bool": "BOOLEAN",
                 "date": "DATE", "timestamp": "TIMESTAMP", None: "TEXT"},
    "duckdb": {"int": "BIGINT", "real": "DOUBLE", "num": "DOUBLE", "text": "TEXT", "bool": "BOOLEAN",
               "date": "DATE", "timestamp": "TIMESTAMP", None: "TEXT"},
    "mysql": {"int": "BIGINT", "real": "DOUBLE", "num": "DOUBLE", "text": "TEXT", "bool": "BOOLEAN",
              "date": "DATE", "timestamp": "DATETIME", None: "TEXT"},
    "tsql": {"int": "BIGINT", "real": "FLOAT", "num": "FLOAT", "text": "NVARCHAR(MAX)", "bool": "BIT",
             "date": "DATE", "timestamp": "DATETIME2", None: "NVARCHAR(MAX)"},
}


def target_type(declared: str, target: str) -> str:
    kind: str | None = affinity(declared)
    if kind == "date" and any(word in declared.upper() for word in ("TIME", "STAMP")):
        kind = "timestamp"
    return _TYPES[target][kind]


def table_ddl(table: Table, target: str, *, temporary: bool = False) -> str:
    columns = ", ".join(f"{written_identifier(c.name, c.quote, target).sql(target)} {target_type(c.type, target)}"
                        for c in table.columns)
    name = written_identifier(table.name, table.quote, target).sql(target)
    head = "CREATE TEMPORARY TABLE" if temporary else "CREATE TABLE"
    return f"{head} {name} ({columns})"


@functools.lru_cache(maxsize=128)
def target_tables(schema: str, target: str, *, temporary: bool = False) -> tuple[str, ...]:
    """CREATE TABLE statements for every table of `schema` that has columns, in `target`'s dialect."""
    get_dialect(target)  # an unknown dialect is the caller's bug: raise here, not halfway
    return tuple(table_ddl(table, target, temporary=temporary) for table in read_schema(schema).tables
                 if table.columns)


def quoted_table_name(table: Table, target: str) -> str:
    return str(written_identifier(table.name, table.quote, target).sql(target))


__all__ = ["exp", "quoted_table_name", "table_ddl", "target_tables", "target_type"]
