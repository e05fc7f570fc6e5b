"""The schema model (gateway/schema_model) as databases a query can be compiled against: empty SQLite images (one
for the default schema and one per other schema the text declares, attached under its name; built once per schema
text, copied into a fresh in-memory connection per check) and DuckDB DDL.

Every identifier is quoted, so names that are not valid unquoted SQL (`18_49_Rating_Share`, `"first name"`) build;
a view is built as a table with the view's columns (compiling reads names, not rows). A table that can't be built
is listed with the reason, never fatal."""

from __future__ import annotations

import functools
import re
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass

from gateway.schema_model import SchemaModel, Table, read_schema


@dataclass(frozen=True)
class SqliteImages:
    """Empty SQLite databases, serialized: `main` (tables of the default schema) and one per other schema.
    `built` lists (schema, table) in lower case; `unbuilt` (table, why) what is missing."""

    main: bytes
    attached: tuple[tuple[str, bytes], ...]
    built: frozenset[tuple[str, str]]
    unbuilt: tuple[tuple[str, str], ...]


def quote_identifier(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


# Past this many tables a check builds only the tables its query reads: SQLite parses every table of a database
# on the first prepare (~10 ms a check at 1,000 tables), and DuckDB's CREATE TABLE costs milliseconds each.
WHOLE_SCHEMA_TABLES = 64


@functools.lru_cache(maxsize=256)
def sqlite_images(schema: str, only: frozenset[tuple[str, str]] | None = None) -> SqliteImages:
    """Build the schema's tables (those of `only`, when given) in empty in-memory SQLite databases once and keep
    them serialized (small pages: an empty table is one page). Columns carry no type: compiling never depends on
    type affinity."""
    model = read_schema(schema)
    unbuilt: list[tuple[str, str]] = [(part.name or part.excerpt, part.reason) for part in model.unreadable]
    built: set[tuple[str, str]] = set()
    by_schema: dict[str, list[Table]] = {}
    for table in model.tables:
        if only is None or table.key in only:
            by_schema.setdefault(table.schema.lower(), []).append(table)
    images: dict[str, bytes] = {}
    for schema_name, tables in by_schema.items():
        connection = sqlite3.connect(":memory:", isolation_level=None)
        try:
            connection.execute("PRAGMA page_size = 512")
            for table in tables:
                problem = _build(connection, table)
                if problem is None:
                    built.add(table.key)
                else:
                    unbuilt.append((table.qualified, problem))
            images[schema_name] = connection.serialize()
        finally:
            connection.close()
    main = images.pop("", None) or _empty_image()
    return SqliteImages(main, tuple(sorted(images.items())), frozenset(built), tuple(unbuilt))


def _build(connection: sqlite3.Connection, table: Table) -> str | None:
    if not table.columns:
        return "no columns"
    if table.name.lower().startswith("sqlite_"):
        return "SQLite reserves names starting with sqlite_"
    columns = ", ".join(quote_identifier(column.name) for column in table.columns)
    try:
        connection.execute(f"CREATE TABLE {quote_identifier(table.name)} ({columns})")
    except sqlite3.Error as error:
        return str(error)
    return None


@functools.lru_cache(maxsize=1)
def _empty_image() -> bytes:
    connection = sqlite3.connect(":memory:")
    try:
        connection.execute("PRAGMA page_size = 512")
        connection.execute("VACUUM")
        return connection.serialize()
    finally:
        connection.close()


@dataclass(frozen=True)
class DuckTable:
    table: Table
    statement: str
    exact_types: bool  # every type as the schema wrote it (else some mapped to a family: binder verdicts on
    # types are then not the schema's)


def duckdb_ddl(model: SchemaModel) -> tuple[list[str], list[DuckTable]]:
    """The schemas to create and, per table, CREATE TABLE for DuckDB: types as written where they look
    like plain type names (DuckDB reads PostgreSQL's), else the family SQLite's affinity rules give them."""
    schemas = sorted({table.schema for table in model.tables if table.schema}, key=str.lower)
    tables = []
    for table in model.tables:
        if not table.columns:
            continue
        exact = table.types_known
        parts = []
        for column in table.columns:
            written = column.type.strip()
            if plain_type(written):
                parts.append(f"{quote_identifier(column.name)} {written}")
            else:
                exact = False
                parts.append(f"{quote_identifier(column.name)} {duckdb_type(written)}")
        qualified = (f"{quote_identifier(table.schema)}." if table.schema else "") + quote_identifier(table.name)
        tables.append(DuckTable(table, f"CREATE TABLE {qualified} ({', '.join(parts)})", exact))
    return schemas, tables


def family_ddl(duck: DuckTable, known: Callable[[str], bool] = lambda _: False) -> str:
    """The same table with each type DuckDB does not know (`known` says) mapped to its family."""
    table = duck.table
    qualified = (f"{quote_identifier(table.schema)}." if table.schema else "") + quote_identifier(table.name)
    parts = []
    for column in table.columns:
        written = column.type.strip()
        kept = plain_type(written) and known(written)
        parts.append(f"{quote_identifier(column.name)} {written if kept else duckdb_type(written)}")
    return f"CREATE TABLE {qualified} ({', '.join(parts)})"


# A type name as DuckDB (and PostgreSQL) write them: words, digits, parentheses (`numeric(10,2)`, `STRUCT(a INT)`),
# array brackets, a schema's dot; no statement separator, no quote. Anything else is mapped to its family; a type
# DuckDB refuses maps the whole table (duck.py).
_PLAIN_TYPE = re.compile(r"[A-Za-z_][A-Za-z0-9_ ,.()\[\]]{0,120}")


def plain_type(written: str) -> bool:
    """Whether a type as written may go into DuckDB's DDL as it is."""
    return bool(written) and _PLAIN_TYPE.fullmatch(written) is not None and written.count("(") == written.count(")")


def duckdb_type(type_text: str) -> str:
    upper = type_text.upper()
    if upper.startswith(("STRUCT", "MAP", "UNION", "JSON")):
        return "VARCHAR"
    if upper.endswith("[]"):
        return duckdb_type(type_text[:-2]) + "[]"
    for needle, family in _TYPE_FAMILIES:
        if needle in upper:
            return family
    return "VARCHAR"


_TYPE_FAMILIES = (
    ("INT", "BIGINT"), ("CHAR", "VARCHAR"), ("CLOB", "VARCHAR"), ("TEXT", "VARCHAR"), ("BLOB", "BLOB"),
    ("REAL", "DOUBLE"), ("FLOA", "DOUBLE"), ("DOUB", "DOUBLE"), ("DEC", "DOUBLE"), ("NUMERIC", "DOUBLE"),
    ("NUMBER", "DOUBLE"), ("BOOL", "BOOLEAN"), ("TIMESTAMP", "TIMESTAMP"), ("DATETIME", "TIMESTAMP"),
    ("DATE", "DATE"), ("TIME", "TIME"),
)
