"""The shared store for several gateway replicas: PostgreSQL through psycopg 3. A transaction that returned is
committed (synchronous_commit on, whatever the server's default). A connection that broke is opened again on the
next operation; the operation that met the break fails (the caller answers 503), it is never retried blind."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import psycopg

from gateway.store.base import ThreadedStore
from gateway.store.queries import Tx
from gateway.store.records import StoreError

CONNECT_TIMEOUT_S = 5
STATEMENT_TIMEOUT_MS = 10_000
MIGRATION_LOCK = 0x5a1_6a7e  # pg_advisory_xact_lock key: replicas starting together migrate one at a time


class _PostgresTx:
    def __init__(self, connection: psycopg.Connection[Any]) -> None:
        self._connection = connection

    def run(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        cursor = self._connection.execute(sql.replace("?", "%s"), tuple(params))
        return list(cursor.fetchall()) if cursor.description is not None else []

    def count(self, sql: str, params: Sequence[Any] = ()) -> int:
        return int(self._connection.execute(sql.replace("?", "%s"), tuple(params)).rowcount)


class PostgresStore(ThreadedStore):
    name = "postgresql"

    def __init__(self, url: str) -> None:
        super().__init__()
        self._url = url
        self._connection: psycopg.Connection[Any] | None = None

    def _connect(self) -> None:
        try:
            self._connection = psycopg.connect(
                self._url, connect_timeout=CONNECT_TIMEOUT_S, application_name="sqlgate", autocommit=False,
                options=f"-c synchronous_commit=on -c statement_timeout={STATEMENT_TIMEOUT_MS}")
        except psycopg.Error as exc:
            # psycopg's message can carry the host and user, never the password; keep only the first line.
            first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise StoreError(f"cannot connect to PostgreSQL: {first_line}") from None

    @contextmanager
    def _transaction(self) -> Iterator[Tx]:
        if self._connection is None or self._connection.closed or self._connection.broken:
            self._close()
            self._connect()
        connection = self._connection
        assert connection is not None
        try:
            with connection.transaction():
                yield _PostgresTx(connection)
        except psycopg.Error as exc:
            if connection.broken or connection.closed:
                self._close()
            raise StoreError(f"PostgreSQL failed: {type(exc).__name__}") from None

    def _serialize_migrations(self, tx: Tx) -> None:
        tx.run("SELECT pg_advisory_xact_lock(?)", (MIGRATION_LOCK,))

    def _close(self) -> None:
        if self._connection is not None:
            try:
                self._connection.close()
            finally:
                self._connection = None
