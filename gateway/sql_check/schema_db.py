"""The request's CREATE TABLE text as databases a query can be compiled against: an empty SQLite image (built once
per schema text, copied into a fresh in-memory connection per check) and DuckDB DDL.

Every identifier is quoted, so names that are not valid unquoted SQL (`18_49_Rating_Share`, `"first name"`)
and odd type names (`weird type(3,4)`) build; a table that can't be built is listed with the reason, never fatal.
"""

from __future__ import annotations

import functools
import re
import sqlite3
from dataclasses import dataclass

import sqlglot.expressions as exp
from sqlglot.errors import ParseError, TokenError

from gateway.sql_check.parsing import get_dialect
from gateway.sql_check.result import MAX_SCHEMA_CHARS, SUPPORTED_DIALECTS
from gateway.sql_check.schema import create_table_statements, top_level_items, unquote


@dataclass(frozen=True)
class ColumnDef:
    name: str
    type_text: str  # as written ("" when none); only DuckDB's DDL uses it, mapped to a family


@dataclass(frozen=True)
class TableDef:
    name: str
    columns: tuple[ColumnDef, ...]


@dataclass(frozen=True)
class SchemaTables:
    tables: tuple[TableDef, ...]
    unreadable: tuple[str, ...]  # CREATE TABLE statements of which not even the name and columns could be read


@dataclass(frozen=True)
class SqliteImage:
    """An empty SQLite database with the schema's tables, serialized; `unbuilt` lists (table, why) it lacks."""

    image: bytes
    tables: tuple[str, ...]
    unbuilt: tuple[tuple[str, str], ...]


@functools.lru_cache(maxsize=128)
def schema_tables(schema: str, dialect: str = "sqlite") -> SchemaTables:
    """Tables and columns, in order, from lenient CREATE TABLE text; never raises. Memoised per text."""
    if len(schema) > MAX_SCHEMA_CHARS:
        return SchemaTables((), ("the schema is longer than the check reads",))
    tables: dict[str, TableDef] = {}
    unreadable: list[str] = []
    for statement in create_table_statements(schema):
        table = _read_table(statement, dialect)
        if table is None:
            unreadable.append(" ".join(statement.split())[:60])
        elif table.name.lower() not in tables:  # a repeated table: the first definition wins, as in a database
            tables[table.name.lower()] = table
    return SchemaTables(tuple(tables.values()), tuple(unreadable))


def read_table(statement: str, dialect: str = "sqlite") -> TableDef | None:
    """One CREATE TABLE statement's name and columns, or None when even those can't be read."""
    return _read_table(statement, dialect)


def _read_table(statement: str, dialect: str) -> TableDef | None:
    for read in dict.fromkeys((dialect if dialect in SUPPORTED_DIALECTS else "sqlite", "sqlite")):
        try:
            parsed = get_dialect(read).parse(statement)
        except (ParseError, TokenError, RecursionError, ValueError):
            continue
        create = parsed[0] if len(parsed) == 1 else None
        if isinstance(create, exp.Create) and isinstance(create.this, exp.Schema):
            table = create.this.this
            if isinstance(table, exp.Table) and table.name:
                columns = [ColumnDef(d.name, _type_text(d)) for d in create.this.expressions
                           if isinstance(d, exp.ColumnDef) and d.name]
                return TableDef(table.name, _unique_columns(columns))
    return _read_table_by_hand(statement)


def _type_text(column: exp.ColumnDef) -> str:
    kind = column.args.get("kind")
    return kind.sql("sqlite") if isinstance(kind, exp.DataType) else ""


# Fallback for text sqlglot refuses (a column named 18_49_Rating_Share, an unknown type with arguments): the name
# after CREATE TABLE, then the first word of each top-level item of the parenthesis, constraints skipped.
_HEAD = re.compile(r"""CREATE\s.*?\bTABLE\s+(?:IF\s+NOT\s+EXISTS\s+)?(?P<name>(?:"[^"]+"|`[^`]+`|\[[^\]]+\]|[^\s(.]+)"""
                   r"""(?:\s*\.\s*(?:"[^"]+"|`[^`]+`|\[[^\]]+\]|[^\s(.]+)){0,2})\s*\(""", re.IGNORECASE | re.DOTALL)
_WORD = re.compile(r"""\s*("(?:[^"]|"")+"|`[^`]+`|\[[^\]]+\]|[^\s,()]+)\s*(.*)""", re.DOTALL)
_CONSTRAINT_WORDS = frozenset({"primary", "foreign", "unique", "check", "constraint", "key", "index",
                               "fulltext", "spatial", "exclude", "period"})


def _read_table_by_hand(statement: str) -> TableDef | None:
    head = _HEAD.match(statement)
    if head is None:
        return None
    name = unquote(_split_dotted(head.group("name"))[-1])
    body = statement[head.end():]
    body = body[: body.rfind(")")] if ")" in body else body
    columns: list[ColumnDef] = []
    for item in top_level_items(body):
        word = _WORD.match(item)
        if word is not None and word.group(1).lower() not in _CONSTRAINT_WORDS:
            columns.append(ColumnDef(unquote(word.group(1)), word.group(2).split(" ")[0] if word.group(2) else ""))
    return TableDef(name, _unique_columns(columns)) if name else None


def _split_dotted(name: str) -> list[str]:
    return re.findall(r'"[^"]+"|`[^`]+`|\[[^\]]+\]|[^.\s]+', name) or [name]


def _unique_columns(columns: list[ColumnDef]) -> tuple[ColumnDef, ...]:
    seen: dict[str, ColumnDef] = {}
    for column in columns:
        seen.setdefault(column.name.lower(), column)
    return tuple(seen.values())


def quote_identifier(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


@functools.lru_cache(maxsize=64)
def sqlite_image(schema: str, dialect: str = "sqlite") -> SqliteImage:
    """Build the schema's tables in an empty in-memory SQLite database once, and keep it serialized (small pages:
    an empty table is one page). Columns carry no type: compiling never depends on type affinity."""
    read = schema_tables(schema, dialect)
    unbuilt: list[tuple[str, str]] = [(text, "not a CREATE TABLE statement the check can read")
                                      for text in read.unreadable]
    built: list[str] = []
    connection = sqlite3.connect(":memory:", isolation_level=None)
    try:
        connection.execute("PRAGMA page_size = 512")
        for table in read.tables:
            if not table.columns:
                unbuilt.append((table.name, "no columns"))
                continue
            columns = ", ".join(quote_identifier(column.name) for column in table.columns)
            try:
                connection.execute(f"CREATE TABLE {quote_identifier(table.name)} ({columns})")
            except sqlite3.Error as error:  # e.g. a name starting with sqlite_, reserved by SQLite
                unbuilt.append((table.name, str(error)))
                continue
            built.append(table.name)
        return SqliteImage(connection.serialize(), tuple(built), tuple(unbuilt))
    finally:
        connection.close()


def duckdb_ddl(tables: tuple[TableDef, ...]) -> list[tuple[str, str]]:
    """(table, CREATE TABLE statement) for DuckDB. DuckDB binds types strictly, so each type is mapped to its
    family by SQLite's own affinity rules and anything unknown becomes VARCHAR."""
    statements = []
    for table in tables:
        if table.columns:
            columns = ", ".join(f"{quote_identifier(c.name)} {duckdb_type(c.type_text)}" for c in table.columns)
            statements.append((table.name, f"CREATE TABLE {quote_identifier(table.name)} ({columns})"))
    return statements


def duckdb_type(type_text: str) -> str:
    upper = type_text.upper()
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
