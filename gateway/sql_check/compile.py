"""Does the query compile against its own schema? Prepare only, on a real engine, against empty tables.

- `sqlite` (what the model writes): `EXPLAIN` in a fresh in-memory SQLite connection holding the schema's tables
  (each other schema the text declares attached under its name). Authoritative whenever every table the query
  reads was built, even if another table of the schema was not: any failure means it does not compile.
- `duckdb`: `PREPARE` in DuckDB in memory, the tables built with the types the schema wrote; authoritative the same
  way (a binder error is a refusal), except a type error where a type had to be guessed.
- other dialects: translated to SQLite with sqlglot where it can be (`sqlite_transpiled`); where the translation
  fails or SQLite trips over translated dialect syntax, the PostgreSQL family is prepared in DuckDB (`duckdb`).
  Only an unknown table or column is a failure there; anything else is `compiled: null` with the reason.

Never raises; bounded in time and memory (SQLite's progress handler; DuckDB's memory limit, one thread and an
interrupt on a timer). docs/sql-guard.md has the rules."""

from __future__ import annotations

import re
import sqlite3
import time
from collections.abc import Collection
from dataclasses import dataclass
from typing import Literal

import sqlglot
import sqlglot.expressions as exp
from sqlglot.tokenizer_core import TokenType

from gateway.schema_model import DEFAULT_SCHEMAS, SchemaModel, read_schema
from gateway.sql_check.duck import COMPILE_TIMEOUT_S, duckdb_prepare
from gateway.sql_check.names import names_in_query
from gateway.sql_check.parsing import get_dialect, translate
from gateway.sql_check.schema_db import WHOLE_SCHEMA_TABLES, SqliteImages, sqlite_images

CompilePath = Literal["sqlite", "sqlite_transpiled", "duckdb", "none"]
TableKey = tuple[str, str]  # (schema, table), lower-cased; "" for the default schema

_PROGRESS_EVERY = 1_000  # SQLite virtual-machine steps between deadline checks
_POSTGRES_FAMILY = frozenset({"postgres", "redshift", "duckdb"})
# Statements a check connection must never prepare: the check's text passed the guard, but defence in depth.
_DENIED_ACTIONS = frozenset({sqlite3.SQLITE_ATTACH, sqlite3.SQLITE_DETACH, sqlite3.SQLITE_PRAGMA})
_SQLITE_UNKNOWN_NAME = re.compile(r"^no such (table|column): ")
# SQLite could not even parse it: broken whatever the schema holds.
_SQLITE_SYNTAX = re.compile(r"^(?:near .*: syntax error|incomplete input|unrecognized token)")
_RESERVED_SQLITE_SCHEMAS = frozenset({"main", "temp"})


@dataclass(frozen=True)
class CompileResult:
    """`compiled`: True compiles, False does not (the message says why), None not decided (the message says why)."""

    compiled: bool | None
    engine: str
    message: str | None
    path: CompilePath


def compile_sql(sql: str, *, schema: str | None, dialect: str = "sqlite",
                touched: Collection[TableKey] | None = None) -> CompileResult:
    """Compile one (already guarded) statement against empty databases built from `schema`; never raises.

    `touched`: the schema tables the query reads (the check's grounding knows them); read from the SQL if None."""
    try:
        return _compile(sql, schema, dialect, touched)
    except Exception:  # an engine or translator surprise must never fail the request, nor refuse the query
        return CompileResult(None, "", "The compile step failed unexpectedly; only the schema grounding applies.",
                             "none")


def _compile(sql: str, schema: str | None, dialect: str, touched: Collection[TableKey] | None) -> CompileResult:
    if not schema or not schema.strip():
        return CompileResult(None, "", "There is no schema to compile against.", "none")
    model = read_schema(schema)
    if not model.tables:
        return CompileResult(None, "", "The schema has no table or view definition that could be read.", "none")
    keys = set(touched) if touched is not None else tables_of(sql, dialect)
    # a big schema: only the tables the query reads (a name the schema lacks stays missing: the query's fault)
    images = sqlite_images(schema, frozenset(keys) if len(model.tables) > WHOLE_SCHEMA_TABLES else None)
    # In the schema but not built (a statement that could not be read, a name SQLite reserves): the engine can't
    # judge a query that reads one. A name the schema lacks altogether is the query's fault.
    missing = [".".join(part for part in key if part) for key in keys
               if key not in images.built and _in_schema(model, key)]
    sql = _without_default_qualifiers(sql, dialect)
    if dialect == "sqlite":
        return _sqlite(sql, images, path="sqlite", authoritative=not missing, missing=missing)
    reasons: list[str] = []
    if dialect != "duckdb":
        try:
            translated = translate(sql, dialect, "sqlite")
        except Exception:
            reasons.append("it uses syntax that has no SQLite equivalent")
        else:
            result = _sqlite(translated, images, path="sqlite_transpiled", authoritative=False, missing=missing,
                             sql_as_written=sql, dialect=dialect)
            # SQLite says "no such column" after a translation: for the PostgreSQL family DuckDB, closer to it,
            # has the last word
            if result.compiled is not None and (result.compiled or dialect not in _POSTGRES_FAMILY):
                return result
            reasons.append(f"SQLite, after translation, says: {result.message}")
    if dialect in _POSTGRES_FAMILY:
        compiled, engine, message = duckdb_prepare(sql, schema, dialect, keys, complete=not missing)
        if compiled is not None:
            return CompileResult(compiled, engine, message, "duckdb")
        reasons.append(f"DuckDB says: {message}")
    return CompileResult(None, "", f"Not compiled in {dialect}: {'; '.join(reasons)}. Only the schema grounding "
                                   "applies.", "none")


def _in_schema(model: SchemaModel, key: TableKey) -> bool:
    lookup = model.lookup(key[1], key[0])
    return lookup.table is not None or bool(lookup.ambiguous) or lookup.unreadable is not None


def tables_of(sql: str, dialect: str) -> set[TableKey]:
    """(schema, table) of every table the query names, CTEs left out (for callers without a grounding)."""
    try:
        tree = sqlglot.parse_one(sql, read=dialect)
    except Exception:
        return set()
    ctes = {cte.alias_or_name.lower() for cte in tree.find_all(exp.CTE)}
    return {("" if table.db.lower() in DEFAULT_SCHEMAS else table.db.lower(), table.name.lower())
            for table in tree.find_all(exp.Table)
            if isinstance(table.this, exp.Identifier) and not (not table.db and table.name.lower() in ctes)}


def _without_default_qualifiers(sql: str, dialect: str) -> str:
    """`public.t` (PostgreSQL), `dbo.t` (SQL Server), `main.t` as `t`, and a database before a schema
    (`db.sales.t` as `sales.t`): the engines here hold the default schema's tables in `main` and every other
    schema under its own name.

    Cut from the text itself, by token positions: re-rendering the query through sqlglot would also repair what
    the engine must see broken (`SELECT a, FROM t` comes back as `SELECT a FROM t`)."""
    lowered = sql.lower()
    if "." not in sql or (not any(name in lowered for name in DEFAULT_SCHEMAS) and lowered.count(".") < 2):
        return sql
    tokens = get_dialect(dialect).tokenize(sql)
    names = (TokenType.VAR, TokenType.IDENTIFIER)
    cuts: list[tuple[int, int]] = []
    for index in range(len(tokens) - 2):
        name, dot, following = tokens[index], tokens[index + 1], tokens[index + 2]
        after_dot = index > 0 and tokens[index - 1].token_type == TokenType.DOT
        if after_dot or dot.token_type != TokenType.DOT or following.token_type not in names:
            continue
        three_part = (index + 4 < len(tokens) and tokens[index + 3].token_type == TokenType.DOT
                      and tokens[index + 4].token_type in names)
        if name.text.lower() in DEFAULT_SCHEMAS or three_part:
            cuts.append((name.start, dot.end + 1))
    for start, end in reversed(cuts):
        sql = sql[:start] + sql[end:]
    return sql


# --- SQLite ---------------------------------------------------------------------------------------------------


def _sqlite(sql: str, images: SqliteImages, *, path: CompilePath, authoritative: bool, missing: list[str],
            sql_as_written: str = "", dialect: str = "sqlite") -> CompileResult:
    engine = f"sqlite {sqlite3.sqlite_version}"
    connection = sqlite3.connect(":memory:", isolation_level=None, check_same_thread=True)
    try:
        connection.deserialize(images.main)
        for name, image in images.attached:
            if name not in _RESERVED_SQLITE_SCHEMAS:
                connection.execute("ATTACH DATABASE ':memory:' AS " + '"' + name.replace('"', '""') + '"')
                connection.deserialize(image, name=name)
        connection.set_authorizer(_authorize)
        deadline = time.monotonic() + COMPILE_TIMEOUT_S
        connection.set_progress_handler(lambda: int(time.monotonic() > deadline), _PROGRESS_EVERY)
        try:
            connection.execute(f"EXPLAIN {sql}").fetchall()
        except (sqlite3.Error, sqlite3.Warning) as error:
            message = str(error)
            if message == "interrupted":
                return CompileResult(None, engine, f"SQLite took longer than {COMPILE_TIMEOUT_S} s to prepare it.",
                                     path)
            if missing and not (path == "sqlite" and _SQLITE_SYNTAX.match(message)):
                return CompileResult(None, engine, f"{message}; but the query reads tables the check could not "
                                                   f"build: {', '.join(missing[:3])}.", path)
            unknown = _SQLITE_UNKNOWN_NAME.match(message)
            if authoritative or (unknown and names_in_query(sql_as_written, dialect, message[unknown.end():])):
                return CompileResult(False, engine, message, path)
            return CompileResult(None, engine, message, path)
        return CompileResult(True, engine, None, path)
    finally:
        connection.close()


def _authorize(action: int, *_: object) -> int:
    return sqlite3.SQLITE_DENY if action in _DENIED_ACTIONS else sqlite3.SQLITE_OK
