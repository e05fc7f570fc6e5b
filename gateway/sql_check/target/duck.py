"""DuckDB, the target engine that runs in process: one empty database per schema text (cached), holding the
schema's tables as target_tables writes them, and each transpiled query prepared on a fresh cursor. Bounded
whatever the SQL: one thread, a memory limit, no file or network access, no extension loading, an interrupt on a
timer (DuckDB folds constant expressions while it prepares: FACTS.md)."""

from __future__ import annotations

import functools
import threading
from typing import TYPE_CHECKING, Any

from gateway.sql_check.duck import bound_reached, duckdb_config, first_line, prepare_bounded
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
        return TargetCheck.translation(f"DuckDB could not be started here: {first_line(str(error))[:300]}")
    if database.unbuilt:
        return TargetCheck.translation(f"DuckDB could not build the schema's table {database.unbuilt[0]}",
                                       database.engine)
    message = prepare_bounded(database.connect(), "sqlgate_target", sql, PREPARE_TIMEOUT_S)
    if message is None:
        return TargetCheck(level="engine", engine=database.engine)
    refused = message[:300]
    if (bound := bound_reached(refused, PREPARE_TIMEOUT_S)) is not None:
        return TargetCheck.translation(bound, database.engine)
    return TargetCheck(level="engine", engine=database.engine, refused=refused)


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
