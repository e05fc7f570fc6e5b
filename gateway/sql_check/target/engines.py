"""The target engines the gateway may ask, per dialect: DuckDB in process (always), PostgreSQL and MySQL when a
scratch database for checks is configured; SQL Server never (none runs here). `check` is synchronous and bounded
(pool wait, connect and statement timeouts); the answer pipeline calls it in a worker thread under its own
deadline, so a slow check database costs at most that deadline and never blocks other requests."""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Protocol

from gateway.sql_check.dialect_names import dialect_label
from gateway.sql_check.target.duck import duckdb_check
from gateway.sql_check.target.verdict import TargetCheck

_REMEMBERED = 1024  # decisive answers kept per process, keyed by (dialect, schema, query)


class RemoteTarget(Protocol):
    engine: str

    def check(self, sql: str, schema: str) -> TargetCheck: ...

    def close(self) -> None: ...


class TargetEngines:
    """Built once at start-up from the settings (`SQLGATE_CHECK_POSTGRES_URL`, `SQLGATE_CHECK_MYSQL_URL`)."""

    def __init__(self, *, postgres_url: str | None = None, mysql_url: str | None = None, timeout_s: float = 2.0,
                 pool_size: int = 2) -> None:
        self.timeout_s = timeout_s
        self._remote: dict[str, RemoteTarget] = {}
        if postgres_url:
            from gateway.sql_check.target.postgres import PostgresTarget

            self._remote["postgres"] = PostgresTarget(postgres_url, timeout_s=timeout_s, pool_size=pool_size)
        if mysql_url:
            from gateway.sql_check.target.mysql import MySQLTarget

            self._remote["mysql"] = MySQLTarget(mysql_url, timeout_s=timeout_s, pool_size=pool_size)
        self._memo: OrderedDict[tuple[str, str, str], TargetCheck] = OrderedDict()
        self._lock = threading.Lock()

    def remote(self, dialect: str) -> bool:
        """Is a check database configured for `dialect` (a network call, to be made off the event loop)?"""
        return dialect in self._remote

    def check(self, sql: str, *, schema: str, dialect: str) -> TargetCheck:
        """What the target engine of `dialect` says about `sql` (already in that dialect); never raises."""
        if dialect == "sqlite":
            return TargetCheck(level=None)
        if dialect == "duckdb":
            return duckdb_check(sql, schema)
        target = self._remote.get(dialect)
        if target is None:
            return TargetCheck.translation(f"no {dialect_label(dialect)} check database is configured"
                                           if dialect in ("postgres", "mysql") else
                                           f"no {dialect_label(dialect)} engine runs here")
        key = (dialect, schema, sql)
        with self._lock:
            remembered = self._memo.get(key)
        if remembered is not None:
            return remembered
        try:
            found = target.check(sql, schema)
        except Exception as error:  # a driver surprise must not fail the request: the answer stays unverified
            found = TargetCheck.translation(f"the {dialect_label(dialect)} check failed: {type(error).__name__}")
        if found.decisive:
            with self._lock:
                self._memo[key] = found
                while len(self._memo) > _REMEMBERED:
                    self._memo.popitem(last=False)
        return found

    def close(self) -> None:
        for target in self._remote.values():
            target.close()
