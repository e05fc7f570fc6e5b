"""MySQL or MariaDB as the target engine, through a scratch database the operator configures
(`SQLGATE_CHECK_MYSQL_URL`, `mysql://user:password@host:port/database` or `...?unix_socket=/path`). Per check, on
one pooled connection: a transaction, the schema's tables created as TEMPORARY tables (they shadow any
table of the same name; the only privilege needed is CREATE TEMPORARY TABLES on that database), the transpiled
query PREPAREd (MySQL resolves names there without running anything), ROLLBACK, the temporary tables dropped."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from gateway.sql_check.target.ddl import target_tables
from gateway.sql_check.target.pool import PooledTarget
from gateway.sql_check.target.verdict import TargetCheck


def connection_arguments(url: str) -> dict[str, Any]:
    """pymysql's arguments for a mysql:// URL."""
    parts = urlsplit(url)
    if parts.scheme not in ("mysql", "mariadb", "mysql+pymysql"):
        raise ValueError("a MySQL check database URL starts with mysql://")
    query = parse_qs(parts.query)
    arguments: dict[str, Any] = {"user": unquote(parts.username or ""), "password": unquote(parts.password or ""),
                                 "database": parts.path.lstrip("/") or None, "charset": "utf8mb4"}
    if "unix_socket" in query:
        arguments["unix_socket"] = query["unix_socket"][0]
    else:
        arguments["host"] = parts.hostname or "127.0.0.1"
        arguments["port"] = parts.port or 3306
    return arguments


class MySQLTarget(PooledTarget):
    label = "MySQL"

    def __init__(self, url: str, *, timeout_s: float, pool_size: int) -> None:
        import pymysql

        self._pymysql = pymysql
        self._arguments = connection_arguments(url)
        self._timeout_s = timeout_s
        self.engine = "mysql"
        super().__init__(timeout_s=timeout_s, pool_size=pool_size, unreachable=(pymysql.err.MySQLError, OSError))

    def _connect(self) -> Any:
        timeout = max(1, int(self._timeout_s + 0.999))
        connection = self._pymysql.connect(**self._arguments, autocommit=True, connect_timeout=timeout,
                                           read_timeout=timeout, write_timeout=timeout)
        version = connection.get_server_info().removeprefix("5.5.5-")  # MariaDB's replication-compatible prefix
        self.engine = f"mariadb {version.split('-')[0]}" if "mariadb" in version.lower() else f"mysql {version}"
        return connection

    def _check(self, connection: Any, sql: str, schema: str) -> TargetCheck:
        statements = target_tables(schema, "mysql", temporary=True)
        names = [statement.split(" (", 1)[0].removeprefix("CREATE TEMPORARY TABLE ") for statement in statements]
        with connection.cursor() as cursor:
            # Not READ ONLY: MariaDB refuses even temporary tables there. Nothing here writes a permanent table (the
            # role may not), and the transaction is rolled back.
            cursor.execute("START TRANSACTION")
            try:
                try:
                    for statement in statements:
                        cursor.execute(statement)
                except self._pymysql.err.MySQLError as error:
                    if _client_side(error):
                        raise
                    return TargetCheck.translation(f"MySQL could not create the schema: {_first_line(error)}",
                                                   self.engine)
                try:
                    cursor.execute("PREPARE sqlgate_target FROM %s", (sql,))
                except self._pymysql.err.MySQLError as error:
                    if _client_side(error):
                        raise
                    return TargetCheck(level="engine", engine=self.engine, refused=_first_line(error))
                cursor.execute("DEALLOCATE PREPARE sqlgate_target")
                return TargetCheck(level="engine", engine=self.engine)
            finally:
                cursor.execute("ROLLBACK")
                for name in names:  # temporary tables outlive a rollback: drop them, the connection is reused
                    cursor.execute(f"DROP TEMPORARY TABLE IF EXISTS {name}")

    def _reason(self, error: BaseException) -> str:
        return _first_line(error)


def _client_side(error: BaseException) -> bool:
    """The connection failed (client error codes 2000 and up: lost, refused, timed out), not the query."""
    arguments: tuple[object, ...] = tuple(getattr(error, "args", ()))
    return not arguments or not isinstance(arguments[0], int) or arguments[0] >= 2000


def _first_line(error: BaseException) -> str:
    arguments: tuple[object, ...] = tuple(getattr(error, "args", ()))
    text = str(arguments[1]) if len(arguments) > 1 else str(error)
    return text.strip().split("\n", 1)[0].strip()[:300]
