"""Does the query compile against its own schema? Prepare only, on a real engine, against empty tables.

- `sqlite` (what the model writes): `EXPLAIN` in a fresh in-memory SQLite connection holding the schema's tables.
  Authoritative: any failure means the query does not compile (`compiled: false`).
- other dialects: translated to SQLite with sqlglot where it can be (`sqlite_transpiled`); where the translation
  fails or SQLite trips over translated dialect syntax, the PostgreSQL family (and DuckDB itself) is prepared in
  DuckDB in memory (`duckdb`). Only an unknown table or column is a failure there; anything else is
  `compiled: null` with the reason (the AST grounding still stands) - a correct query in a dialect we can't
  compile faithfully must not be refused.

Never raises; bounded in time (SQLite's progress handler, DuckDB's interrupt). docs/sql-guard.md has the rules.
"""

from __future__ import annotations

import functools
import re
import sqlite3
import threading
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

import sqlglot
import sqlglot.expressions as exp
from sqlglot.errors import ErrorLevel
from sqlglot.tokenizer_core import TokenType

from gateway.sql_check.grounding import DEFAULT_SCHEMAS
from gateway.sql_check.parsing import get_dialect
from gateway.sql_check.schema import schema_qualifiers
from gateway.sql_check.schema_db import duckdb_ddl, schema_tables, sqlite_image

if TYPE_CHECKING:  # only for the annotation: DuckDB is imported when a query first needs it
    import duckdb

CompilePath = Literal["sqlite", "sqlite_transpiled", "duckdb", "none"]

COMPILE_TIMEOUT_S = 0.5  # preparing a capped query against empty tables takes ~1 ms; this is a backstop
_PROGRESS_EVERY = 1_000  # SQLite virtual-machine steps between deadline checks
_POSTGRES_FAMILY = frozenset({"postgres", "redshift", "duckdb"})
# Statements a check connection must never prepare: the check's text passed the guard, but defence in depth.
_DENIED_ACTIONS = frozenset({sqlite3.SQLITE_ATTACH, sqlite3.SQLITE_DETACH, sqlite3.SQLITE_PRAGMA})
_SQLITE_UNKNOWN_NAME = re.compile(r"^no such (table|column): ")
_DUCKDB_UNKNOWN_NAME = (
    re.compile(r"Table with name (\S+) does not exist"),
    re.compile(r'Referenced (?:column|table) "([^"]+)" not found'),
    re.compile(r'Table "[^"]+" does not have a column named "([^"]+)"'),
)


@dataclass(frozen=True)
class CompileResult:
    """`compiled`: True compiles, False does not (the message says why), None not decided (the message says why)."""

    compiled: bool | None
    engine: str
    message: str | None
    path: CompilePath


def compile_sql(sql: str, *, schema: str | None, dialect: str = "sqlite") -> CompileResult:
    """Compile one (already guarded) statement against an empty database built from `schema`; never raises."""
    try:
        return _compile(sql, schema, dialect)
    except Exception:  # an engine or translator surprise must never fail the request, nor refuse the query
        return CompileResult(None, "", "The compile step failed unexpectedly; only the schema grounding applies.",
                             "none")


def _compile(sql: str, schema: str | None, dialect: str) -> CompileResult:
    if not schema or not schema.strip():
        return CompileResult(None, "", "There is no schema to compile against.", "none")
    if not schema_tables(schema, dialect).tables:
        return CompileResult(None, "", "The schema has no CREATE TABLE statement that could be read.", "none")
    sql = _without_known_qualifiers(sql, schema, dialect)
    if dialect == "sqlite":
        return _sqlite(sql, schema, dialect, path="sqlite", authoritative=True)
    reasons: list[str] = []
    if dialect != "duckdb":
        try:
            translated = _transpile(sql, dialect, "sqlite")
        except Exception:
            reasons.append("it uses syntax that has no SQLite equivalent")
        else:
            result = _sqlite(translated, schema, dialect, path="sqlite_transpiled", authoritative=False,
                             sql_as_written=sql)
            # SQLite says "no such column" after a translation: for the PostgreSQL family DuckDB, closer to it,
            # has the last word
            if result.compiled is not None and (result.compiled or dialect not in _POSTGRES_FAMILY):
                return result
            reasons.append(f"SQLite, after translation, says: {result.message}")
    if dialect in _POSTGRES_FAMILY:
        result = _duckdb(sql, schema, dialect)
        if result.compiled is not None:
            return result
        reasons.append(f"DuckDB says: {result.message}")
    return CompileResult(None, "", f"Not compiled in {dialect}: {'; '.join(reasons)}. Only the schema grounding "
                                   "applies.", "none")


def _without_known_qualifiers(sql: str, schema: str, dialect: str) -> str:
    """`public.t` (PostgreSQL), `dbo.t` (T-SQL), `sales.t` (declared as such in the schema) as `t`: grounding
    accepted those qualifiers, and the engines here hold every table of the schema in their default schema.

    Cut from the text itself, by token positions: re-rendering the query through sqlglot would also repair what
    the engine must see broken (`SELECT a, FROM t` comes back as `SELECT a FROM t`)."""
    qualifiers = DEFAULT_SCHEMAS.get(dialect, frozenset()) | schema_qualifiers(schema)
    if not qualifiers or not any(q in sql.lower() for q in qualifiers):
        return sql
    tokens = get_dialect(dialect).tokenize(sql)
    cuts: list[tuple[int, int]] = []
    for index in range(len(tokens) - 2):
        name, dot, following = tokens[index], tokens[index + 1], tokens[index + 2]
        after_dot = index > 0 and tokens[index - 1].token_type == TokenType.DOT
        if (not after_dot and dot.token_type == TokenType.DOT and name.text.lower() in qualifiers
                and following.token_type in (TokenType.VAR, TokenType.IDENTIFIER)):
            cuts.append((name.start, dot.end + 1))
    for start, end in reversed(cuts):
        sql = sql[:start] + sql[end:]
    return sql


def _transpile(sql: str, read: str, write: str) -> str:
    # RAISE: a construct the target can't express stops here instead of becoming a silently different query
    return sqlglot.transpile(sql, read=read, write=write, unsupported_level=ErrorLevel.RAISE)[0]


# --- SQLite ---------------------------------------------------------------------------------------------------


def _sqlite(sql: str, schema: str, dialect: str, *, path: CompilePath, authoritative: bool,
            sql_as_written: str = "") -> CompileResult:
    image = sqlite_image(schema, dialect)
    engine = f"sqlite {sqlite3.sqlite_version}"
    connection = sqlite3.connect(":memory:", isolation_level=None, check_same_thread=True)
    try:
        connection.deserialize(image.image)
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
            if image.unbuilt:
                missing = ", ".join(f"{name} ({why})" for name, why in image.unbuilt[:3])
                return CompileResult(None, engine, f"{message}; but the schema has tables SQLite could not "
                                                   f"build: {missing}.", path)
            unknown = _SQLITE_UNKNOWN_NAME.match(message)
            if authoritative or (unknown and names_in_query(sql_as_written, dialect, message[unknown.end():])):
                return CompileResult(False, engine, message, path)
            return CompileResult(None, engine, message, path)
        return CompileResult(True, engine, None, path)
    finally:
        connection.close()


def _authorize(action: int, *_: object) -> int:
    return sqlite3.SQLITE_DENY if action in _DENIED_ACTIONS else sqlite3.SQLITE_OK


# --- DuckDB ---------------------------------------------------------------------------------------------------


def _duckdb(sql: str, schema: str, dialect: str) -> CompileResult:
    try:
        translated = sql if dialect == "duckdb" else _transpile(sql, dialect, "duckdb")
    except Exception:
        return CompileResult(None, "duckdb", "it uses syntax that has no DuckDB equivalent", "none")
    database = _duckdb_database(schema, dialect)
    engine = f"duckdb {database.version}"
    connection = database.connect()  # a fresh connection to the cached empty database: DuckDB opens in ~150 ms
    timer = threading.Timer(COMPILE_TIMEOUT_S, connection.interrupt)
    timer.start()
    try:
        connection.execute(f"PREPARE sqlgate_check AS {translated}")
    except Exception as error:  # duckdb.Error and its many subclasses; InterruptException too
        message = _first_line(str(error))
        name = next((found.group(1) for pattern in _DUCKDB_UNKNOWN_NAME if (found := pattern.search(message))), "")
        if name and not database.unbuilt and names_in_query(sql, dialect, name):
            return CompileResult(False, engine, message, "duckdb")
        return CompileResult(None, engine, message, "duckdb")
    finally:
        timer.cancel()
        connection.close()
    return CompileResult(True, engine, None, "duckdb")


def names_in_query(sql: str, dialect: str, name: str) -> bool:
    """Is `name` (as an engine quotes it: `x`, `t.x`) a table or column the query, as written, refers to?

    An engine's "no such column" after a translation is only the query's fault when the name is the query's own;
    a translator can turn a keyword into a column (MySQL's TIMESTAMPDIFF(DAY, ...) becomes a column DAY)."""
    wanted = name.strip().strip('"`[]').rsplit(".", 1)[-1].strip('"`[]').lower()
    try:
        tree = sqlglot.parse_one(sql, read=dialect)
    except Exception:
        return False
    named = {node.name.lower() for node in tree.find_all(exp.Column, exp.Table)}
    return wanted in named


def _first_line(message: str) -> str:
    # DuckDB appends the query with a caret and "Did you mean" hints from its own catalog: neither helps
    return message.strip().split("\n", 1)[0].strip()


class _DuckDatabase:
    def __init__(self, schema: str, dialect: str) -> None:
        import duckdb

        self.version = duckdb.__version__
        self._lock = threading.Lock()
        self._root: duckdb.DuckDBPyConnection = duckdb.connect(":memory:", config=_duckdb_config())
        unbuilt: list[str] = []
        for name, statement in duckdb_ddl(schema_tables(schema, dialect).tables):
            try:
                self._root.execute(statement)
            except duckdb.Error:
                unbuilt.append(name)
        self.unbuilt = tuple(unbuilt)
        self._root.execute("SET lock_configuration = true")

    def connect(self) -> Any:
        with self._lock:  # the root connection is not thread-safe; its cursors (own connections) are
            return self._root.cursor()


def _duckdb_config() -> dict[str, Any]:
    return {"enable_external_access": False, "autoload_known_extensions": False,
            "autoinstall_known_extensions": False, "threads": 1}


@functools.lru_cache(maxsize=8)
def _duckdb_database(schema: str, dialect: str) -> _DuckDatabase:
    return _DuckDatabase(schema, dialect)
