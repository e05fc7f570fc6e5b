"""DuckDB, the target engine that runs in process: one empty database per schema text (cached), holding the
schema's tables as target_tables writes them, and each transpiled query prepared on a fresh cursor. Bounded
whatever the SQL: one thread, a memory limit, no file or network access, no extension loading, an interrupt on a
timer (DuckDB folds constant expressions while it prepares: FACTS.md)."""

from __future__ import annotations

import functools
import threading
from typing import TYPE_CHECKING, Any

from gateway.sql_check.duck import duckdb_config
from gateway.sql_check.target.ddl import target_tables
from gateway.sql_check.target.verdict import TargetCheck

if TYPE_CHECKING:  # only for the annotation: DuckDB is imported when a query first needs it
    import duckdb

PREPARE_TIMEOUT_S = 0.5  # preparing against empty tables takes ~1 ms; this is a backstop


def duckdb_check(sql: str, schema: str) -> TargetCheck:
    """Prepare `sql` (DuckDB's dialect) against the schema's tables; never raises."""
    try:
        database = _database(schema)
    except Exception as error:  # an engine that can't start must not fail the request
        return TargetCheck.translation(f"DuckDB could not be started here: {_first_line(str(error))}")
    if database.unbuilt:
        return TargetCheck.translation(f"DuckDB could not build the schema's table {database.unbuilt[0]}",
                                       database.engine)
    connection = database.connect()
    timer = threading.Timer(PREPARE_TIMEOUT_S, connection.interrupt)
    timer.start()
    try:
        connection.execute(f"PREPARE sqlgate_target AS {sql}")
    except Exception as error:  # duckdb.Error and its many subclasses; InterruptException too
        message = _first_line(str(error))
        if "INTERRUPT" in message.upper():
            return TargetCheck.translation(f"DuckDB took longer than {PREPARE_TIMEOUT_S} s to prepare it",
                                           database.engine)
        if "out of memory" in message.lower():
            return TargetCheck.translation("DuckDB ran out of the memory the check allows it", database.engine)
        return TargetCheck(level="engine", engine=database.engine, refused=message)
    finally:
        timer.cancel()
        connection.close()
    return TargetCheck(level="engine", engine=database.engine)


def _first_line(message: str) -> str:
    # DuckDB appends the query with a caret and "Did you mean" hints from its own catalog: neither helps
    return message.strip().split("\n", 1)[0].strip()[:300]


class _Database:
    def __init__(self, schema: str) -> None:
        import duckdb

        self.engine = f"duckdb {duckdb.__version__}"
        self._lock = threading.Lock()
        # The compile step's bounds (gateway/sql_check/duck.py): one thread, a memory limit, no outside access.
        self._root: duckdb.DuckDBPyConnection = duckdb.connect(":memory:", config=duckdb_config())
        unbuilt = []
        for statement in target_tables(schema, "duckdb"):
            try:
                self._root.execute(statement)
            except duckdb.Error:
                unbuilt.append(statement.split("(", 1)[0].removeprefix("CREATE TABLE ").strip())
        self.unbuilt = tuple(unbuilt)
        self._root.execute("SET lock_configuration = true")

    def connect(self) -> Any:
        with self._lock:  # the root connection is not thread-safe; its cursors (own connections) are
            return self._root.cursor()


@functools.lru_cache(maxsize=8)
def _database(schema: str) -> _Database:
    return _Database(schema)
