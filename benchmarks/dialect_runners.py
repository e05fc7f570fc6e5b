"""One session per engine that loads a row's instance and runs queries on it, each bounded (a statement timeout,
an interrupt, a step budget): SQLite and DuckDB in memory, PostgreSQL in a throwaway schema of the benchmark's
server, MariaDB in a throwaway database of its server."""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any, Protocol

from benchmarks.dialect_data import MAX_ROWS, Instance, load

QUERY_TIMEOUT_S = 5.0
_SQLITE_STEPS = 20_000_000


class TooLarge(Exception):
    """The result has more rows than the benchmark compares."""


class Session(Protocol):
    def run(self, sql: str) -> list[tuple[Any, ...]]: ...


def _fetch(cursor: Any) -> list[tuple[Any, ...]]:
    rows = cursor.fetchmany(MAX_ROWS + 1)
    if len(rows) > MAX_ROWS:
        raise TooLarge
    return [tuple(row) for row in rows]


class SqliteSession:
    def __init__(self) -> None:
        self.connection = sqlite3.connect(":memory:", isolation_level=None)

    def run(self, sql: str) -> list[tuple[Any, ...]]:
        deadline = time.monotonic() + QUERY_TIMEOUT_S
        self.connection.set_progress_handler(lambda: int(time.monotonic() > deadline), 10_000)
        return _fetch(self.connection.execute(sql))


class DuckSession:
    def __init__(self) -> None:
        import duckdb

        self.connection = duckdb.connect(":memory:", config={"threads": 1, "memory_limit": "512MB"})

    def run(self, sql: str) -> list[tuple[Any, ...]]:
        timer = threading.Timer(QUERY_TIMEOUT_S, self.connection.interrupt)
        timer.start()
        try:
            return _fetch(self.connection.execute(sql))
        finally:
            timer.cancel()


class PostgresSession:
    def __init__(self, connection: Any) -> None:
        self.connection = connection

    def run(self, sql: str) -> list[tuple[Any, ...]]:
        cursor = self.connection.execute(sql)
        return _fetch(cursor) if cursor.description else []


class MariaSession:
    def __init__(self, connection: Any) -> None:
        self.connection = connection

    def run(self, sql: str) -> list[tuple[Any, ...]]:
        with self.connection.cursor() as cursor:
            cursor.execute(sql)
            return _fetch(cursor) if cursor.description else []


class Engines:
    """The engines' data connections for the whole run (PostgreSQL and MariaDB given as admin URLs)."""

    def __init__(self, postgres_url: str | None, mariadb_socket: str | None) -> None:
        self._postgres = self._mariadb = None
        if postgres_url:
            import psycopg

            self._postgres = psycopg.connect(postgres_url, autocommit=True,
                                             options=f"-c statement_timeout={int(QUERY_TIMEOUT_S * 1000)}")
        if mariadb_socket:
            import pymysql

            self._mariadb = pymysql.connect(unix_socket=mariadb_socket, user="root", autocommit=True,
                                            charset="utf8mb4")
            with self._mariadb.cursor() as cursor:
                cursor.execute(f"SET SESSION max_statement_time = {QUERY_TIMEOUT_S}")

    def close(self) -> None:
        for connection in (self._postgres, self._mariadb):
            if connection is not None:
                connection.close()

    @contextmanager
    def session(self, dialect: str, instance: Instance, schema: str, name: str) -> Iterator[Session]:
        """`instance` loaded into a fresh database of `dialect`, removed afterwards."""
        if dialect == "sqlite":
            lite = SqliteSession()
            try:
                load(instance, schema, "sqlite", lambda sql, args: lite.connection.execute(sql, args) and None, "?")
                yield lite
            finally:
                lite.connection.close()
        elif dialect == "duckdb":
            duck = DuckSession()
            try:
                load(instance, schema, "duckdb", lambda sql, args: duck.connection.execute(sql, list(args)) and None,
                     "?")
                yield duck
            finally:
                duck.connection.close()
        elif dialect == "postgres":
            yield from self._postgres_session(instance, schema, name)
        else:
            yield from self._mariadb_session(instance, schema, name)

    def _postgres_session(self, instance: Instance, schema: str, name: str) -> Iterator[Session]:
        connection = self._postgres
        assert connection is not None
        connection.execute(f"CREATE SCHEMA {name}")
        try:
            connection.execute(f"SET search_path TO {name}")
            load(instance, schema, "postgres", lambda sql, args: connection.execute(sql, list(args)) and None, "%s")
            yield PostgresSession(connection)
        finally:
            connection.execute("SET search_path TO public")
            connection.execute(f"DROP SCHEMA {name} CASCADE")

    def _mariadb_session(self, instance: Instance, schema: str, name: str) -> Iterator[Session]:
        connection = self._mariadb
        assert connection is not None

        def execute(sql: str, args: Sequence[Any]) -> None:
            with connection.cursor() as cursor:
                cursor.execute(sql, tuple(args) or None)

        execute(f"CREATE DATABASE {name} CHARACTER SET utf8mb4", ())
        try:
            execute(f"USE {name}", ())
            load(instance, schema, "mysql", execute, "%s")
            yield MariaSession(connection)
        finally:
            execute(f"DROP DATABASE {name}", ())
