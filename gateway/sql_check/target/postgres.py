"""PostgreSQL as the target engine, through a scratch database the operator configures
(`SQLGATE_CHECK_POSTGRES_URL`). Per check, on one pooled connection: BEGIN, the schema's tables created as
temporary tables (they shadow any table of the same name and vanish with the transaction), the transpiled query
PREPAREd, then ROLLBACK. PREPARE runs PostgreSQL's own parse analysis (names, types, operators, functions) without
planning or running anything, so no constant is folded and no row is read. The role needs only CONNECT and
TEMPORARY on that database (docs/clients.md)."""

from __future__ import annotations

from typing import Any

from gateway.sql_check.target.ddl import target_tables
from gateway.sql_check.target.pool import PooledTarget
from gateway.sql_check.target.verdict import TargetCheck


class PostgresTarget(PooledTarget):
    label = "PostgreSQL"

    def __init__(self, url: str, *, timeout_s: float, pool_size: int) -> None:
        import psycopg

        self._psycopg = psycopg
        self._url = url
        self._timeout_ms = max(1, int(timeout_s * 1000))
        # libpq counts whole seconds and takes at least 2; the gateway's own deadline is the caller's timeout.
        self._connect_timeout = max(2, int(timeout_s + 0.999))
        self.engine = "postgres"
        super().__init__(timeout_s=timeout_s, pool_size=pool_size, unreachable=(psycopg.Error,))

    def _connect(self) -> Any:
        connection = self._psycopg.connect(self._url, autocommit=True, connect_timeout=self._connect_timeout,
                                           options=f"-c statement_timeout={self._timeout_ms}")
        version = connection.info.server_version
        self.engine = f"postgres {version // 10000}.{version % 10000}"
        return connection

    def _check(self, connection: Any, sql: str, schema: str) -> TargetCheck:
        psycopg = self._psycopg
        connection.execute("BEGIN")
        try:
            try:
                for statement in target_tables(schema, "postgres", temporary=True):
                    connection.execute(statement)
            except psycopg.Error as error:
                if isinstance(error, psycopg.OperationalError):
                    raise
                return TargetCheck.translation(f"PostgreSQL could not create the schema: {_first_line(error)}",
                                               self.engine)
            try:
                connection.execute(f"PREPARE sqlgate_target AS {sql}")
            except psycopg.errors.QueryCanceled:
                return TargetCheck.translation("PostgreSQL took too long to prepare it", self.engine)
            except psycopg.Error as error:
                if isinstance(error, psycopg.OperationalError):
                    raise
                return TargetCheck(level="engine", engine=self.engine, refused=_first_line(error))
            connection.execute("DEALLOCATE sqlgate_target")  # a prepared statement outlives the transaction
            return TargetCheck(level="engine", engine=self.engine)
        finally:
            connection.execute("ROLLBACK")

    def _reason(self, error: BaseException) -> str:
        return _first_line(error)


def _first_line(error: BaseException) -> str:
    return str(error).strip().split("\n", 1)[0].strip()[:300]
