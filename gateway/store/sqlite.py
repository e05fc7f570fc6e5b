"""The embedded store: one SQLite file (WAL, synchronous=FULL: a transaction that returned is on disk, and survives
the process being killed or the machine losing power), or `:memory:` for tests."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from gateway.store.base import ThreadedStore
from gateway.store.queries import Tx
from gateway.store.records import StoreError

BUSY_TIMEOUT_MS = 5000  # another process (a second worker) holding the write lock


class _SqliteTx:
    def __init__(self, connection: sqlite3.Connection) -> None:
        self._connection = connection

    def run(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        return list(self._connection.execute(sql, tuple(params)).fetchall())

    def count(self, sql: str, params: Sequence[Any] = ()) -> int:
        return int(self._connection.execute(sql, tuple(params)).rowcount)


class SqliteStore(ThreadedStore):
    name = "sqlite"

    def __init__(self, path: str) -> None:
        super().__init__()
        self.path = path
        self._connection: sqlite3.Connection | None = None

    def _connect(self) -> None:
        if self.path != ":memory:":
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        try:
            # isolation_level=None: no implicit transactions; each operation says BEGIN IMMEDIATE itself.
            connection = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False,
                                         timeout=BUSY_TIMEOUT_MS / 1000)
            connection.execute("PRAGMA journal_mode=WAL")
            connection.execute("PRAGMA synchronous=FULL")
            connection.execute("PRAGMA foreign_keys=ON")
            connection.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
        except sqlite3.Error as exc:
            raise StoreError(f"cannot open the SQLite store at {self.path}: {exc}") from None
        self._connection = connection

    @contextmanager
    def _transaction(self) -> Iterator[_SqliteTx]:
        connection = self._connection
        if connection is None:
            raise StoreError("the store is closed")
        try:
            connection.execute("BEGIN IMMEDIATE")
        except sqlite3.Error as exc:
            raise StoreError(f"SQLite refused to start a transaction: {type(exc).__name__}: {exc}") from None
        try:
            yield _SqliteTx(connection)
        except sqlite3.Error as exc:
            connection.execute("ROLLBACK")
            raise StoreError(f"SQLite failed: {type(exc).__name__}: {exc}") from None
        except BaseException:
            connection.execute("ROLLBACK")
            raise
        try:
            connection.execute("COMMIT")
        except sqlite3.Error as exc:
            raise StoreError(f"SQLite could not commit: {type(exc).__name__}: {exc}") from None

    def _serialize_migrations(self, tx: Tx) -> None:
        pass  # BEGIN IMMEDIATE already holds the database's write lock

    def _close(self) -> None:
        if self._connection is not None:
            self._connection.close()
            self._connection = None
