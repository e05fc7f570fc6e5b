"""DuckDB for the compile step: one empty in-memory database per schema text (cached), each query prepared on a
fresh cursor. Bounded, whatever the SQL: one thread, a memory limit, no file or network access, no extension
loading, and an interrupt on a timer. DuckDB folds constant expressions while it prepares a statement, so what
can't be bounded here (a 2 GB `lpad`) is refused before it gets here (cost.py)."""

from __future__ import annotations

import functools
import re
import threading
from collections.abc import Collection
from typing import TYPE_CHECKING, Any

from gateway.schema_model import read_schema
from gateway.sql_check.names import names_in_query
from gateway.sql_check.parsing import translate
from gateway.sql_check.schema_db import (
    WHOLE_SCHEMA_TABLES,
    DuckTable,
    duckdb_ddl,
    family_ddl,
    quote_identifier,
)

if TYPE_CHECKING:  # only for the annotation: DuckDB is imported when a query first needs it
    import duckdb

COMPILE_TIMEOUT_S = 0.5  # preparing a capped query against empty tables takes ~1 ms; this is a backstop
DUCKDB_MEMORY_LIMIT = "64MB"
_UNKNOWN_NAME = (
    re.compile(r"Table with name (\S+) does not exist"),
    re.compile(r'Referenced (?:column|table) "([^"]+)" not found'),
    re.compile(r'Table "[^"]+" does not have a column named "([^"]+)"'),
)
# Binder messages about types: not the schema's verdict where a type had to be guessed.
_TYPE_ERROR = re.compile(r"No function matches|Cannot compare|Could not convert|Conversion Error|cannot be cast|"
                         r"implicit cast|Mismatch Type|Type .* does not", re.IGNORECASE)
TableKey = tuple[str, str]


def duckdb_prepare(sql: str, schema: str, dialect: str, touched: Collection[TableKey], *, complete: bool
                   ) -> tuple[bool | None, str, str | None]:
    """(compiled, engine, message). In the duckdb dialect with every table the query reads built, any error is
    the engine's verdict; elsewhere only an unknown table or column is (the rest is not decided)."""
    try:
        translated = sql if dialect == "duckdb" else translate(sql, dialect, "duckdb")
    except Exception:
        return None, "duckdb", "it uses syntax that has no DuckDB equivalent"
    database = _database(schema)
    database.ensure(touched)
    engine = f"duckdb {database.version}"
    # a fresh cursor on the cached empty database: opening one costs ~150 ms
    message = prepare_bounded(database.connect(), "sqlgate_check", translated, COMPILE_TIMEOUT_S)
    if message is None:
        return True, engine, None
    if (bound := bound_reached(message, COMPILE_TIMEOUT_S)) is not None:
        return None, engine, f"{bound}."
    exact = all(key in database.exact for key in touched)
    if dialect == "duckdb" and complete and all(key in database.built for key in touched):
        if exact or not _TYPE_ERROR.search(message):
            return False, engine, message
        return None, engine, f"{message} (a column's type had to be guessed, so this is not the schema's verdict)"
    name = next((found.group(1) for pattern in _UNKNOWN_NAME if (found := pattern.search(message))), "")
    if name and complete and names_in_query(sql, dialect, name):
        return False, engine, message
    return None, engine, message


def prepare_bounded(connection: Any, name: str, sql: str, timeout_s: float) -> str | None:
    """PREPARE `sql` on `connection` (a cursor, closed here), interrupted after `timeout_s`: None when DuckDB
    prepared it, else the first line of its error."""
    timer = threading.Timer(timeout_s, connection.interrupt)
    timer.start()
    try:
        connection.execute(f"PREPARE {name} AS {sql}")
    except Exception as error:  # duckdb.Error and its many subclasses; InterruptException too
        return first_line(str(error))
    finally:
        timer.cancel()
        connection.close()
    return None


def bound_reached(message: str, timeout_s: float) -> str | None:
    """What DuckDB's error says when the check's own bounds stopped it (time, memory), not the query: None else."""
    if "INTERRUPT" in message.upper():
        return f"DuckDB took longer than {timeout_s} s to prepare it"
    if "out of memory" in message.lower():
        return "DuckDB ran out of the memory the check allows it"
    return None


def first_line(message: str) -> str:
    # DuckDB appends the query with a caret and "Did you mean" hints from its own catalog: neither helps
    return message.strip().split("\n", 1)[0].strip()


class _Database:
    """One schema's empty DuckDB database. A small schema is built whole; a big one (over WHOLE_SCHEMA_TABLES
    tables) table by table, as queries first read them: DuckDB's CREATE TABLE costs milliseconds each."""

    def __init__(self, schema: str) -> None:
        import duckdb

        self.version = duckdb.__version__
        self._lock = threading.Lock()
        self._root: duckdb.DuckDBPyConnection = duckdb.connect(":memory:", config=duckdb_config())
        self.built: set[TableKey] = set()
        self.exact: set[TableKey] = set()
        schemas, tables = duckdb_ddl(read_schema(schema))
        self._pending = {table.table.key: table for table in tables}
        for name in schemas:
            self._root.execute(f"CREATE SCHEMA IF NOT EXISTS {quote_identifier(name)}")
        if schemas:  # a bare name finds a table of any schema, as SQLite's attached databases do
            path = ",".join(quote_identifier(name) for name in ["main", *schemas]).replace("'", "''")
            self._root.execute(f"SET search_path = '{path}'")
        self._root.execute("SET lock_configuration = true")  # no query may change the bounds set above
        if len(tables) <= WHOLE_SCHEMA_TABLES:
            self.ensure(list(self._pending))

    def ensure(self, keys: Collection[TableKey]) -> None:
        """Build the tables of `keys` not built yet (once; a table DuckDB refuses stays unbuilt)."""
        import duckdb

        with self._lock:
            for key in keys:
                table = self._pending.pop(key, None)
                if table is None:
                    continue
                for statement, as_written in ((table.statement, table.exact_types), (self._mapped(table), False)):
                    try:
                        self._root.execute(statement)
                    except duckdb.Error:
                        continue
                    self.built.add(key)
                    if as_written:
                        self.exact.add(key)
                    break

    def _mapped(self, table: DuckTable) -> str:
        """The table with only the types DuckDB refuses (a PostgreSQL enum it lacks) mapped to their family."""
        import duckdb

        def known(type_text: str) -> bool:
            try:
                self._root.execute(f"SELECT CAST(NULL AS {type_text})")
            except duckdb.Error:
                return False
            return True

        return family_ddl(table, known)

    def connect(self) -> Any:
        with self._lock:  # the root connection is not thread-safe; its cursors (own connections) are
            return self._root.cursor()


def duckdb_config() -> dict[str, Any]:
    return {"enable_external_access": False, "autoload_known_extensions": False,
            "autoinstall_known_extensions": False, "threads": 1, "memory_limit": DUCKDB_MEMORY_LIMIT,
            "max_temp_directory_size": "0B"}


@functools.lru_cache(maxsize=8)
def _database(schema: str) -> _Database:
    return _Database(schema)
