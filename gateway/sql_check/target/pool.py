"""A small bounded pool of connections to a check database: at most `size` connections, a connection taken only
if one frees within `wait_s` (else the check is skipped, never queued behind a slow database), a connection that
failed closed rather than reused. `PooledTarget`: what the PostgreSQL and MySQL targets do around it."""

from __future__ import annotations

import contextlib
import threading
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, ClassVar, Generic, TypeVar

from gateway.sql_check.target.verdict import TargetCheck

C = TypeVar("C")


class PoolBusy(Exception):
    """Every connection is in use (a slow check database): the caller skips the engine check."""


class BoundedPool(Generic[C]):
    def __init__(self, connect: Callable[[], C], close: Callable[[C], None], size: int, wait_s: float) -> None:
        self._connect = connect
        self._close = close
        self._slots = threading.BoundedSemaphore(size)
        self._idle: list[C] = []
        self._lock = threading.Lock()
        self._wait_s = wait_s
        self._closed = False

    @contextmanager
    def connection(self) -> Iterator[C]:
        if not self._slots.acquire(timeout=self._wait_s):
            raise PoolBusy
        try:
            with self._lock:
                connection = self._idle.pop() if self._idle else None
            if connection is None:
                connection = self._connect()
            try:
                yield connection
            except BaseException:
                self._discard(connection)
                raise
            with self._lock:
                if self._closed:
                    self._discard(connection)
                else:
                    self._idle.append(connection)
        finally:
            self._slots.release()

    def _discard(self, connection: C) -> None:
        with contextlib.suppress(Exception):  # already broken: nothing more to release
            self._close(connection)

    def close(self) -> None:
        with self._lock:
            self._closed = True
            idle, self._idle = self._idle, []
        for connection in idle:
            self._discard(connection)


class PooledTarget(ABC):
    """A check database reached through a bounded pool: a busy pool or a database that does not answer leaves the
    query unchecked (a "translation" verdict saying why), never fails the request."""

    label: ClassVar[str]  # the engine as the verdict's notes name it
    engine: str

    def __init__(self, *, timeout_s: float, pool_size: int, unreachable: tuple[type[BaseException], ...]) -> None:
        self._unreachable = unreachable  # the driver's errors for a database that did not answer
        self._pool: BoundedPool[Any] = BoundedPool(self._connect, lambda c: c.close(), pool_size, wait_s=timeout_s)

    def check(self, sql: str, schema: str) -> TargetCheck:
        try:
            with self._pool.connection() as connection:
                return self._check(connection, sql, schema)
        except PoolBusy:
            return TargetCheck.translation(f"every connection to the {self.label} check database is busy")
        except self._unreachable as error:
            return TargetCheck.translation(f"the {self.label} check database did not answer: {self._reason(error)}")

    def close(self) -> None:
        self._pool.close()

    @abstractmethod
    def _connect(self) -> Any:
        """A new connection; sets `engine` to the server's name and version."""

    @abstractmethod
    def _check(self, connection: Any, sql: str, schema: str) -> TargetCheck: ...

    @abstractmethod
    def _reason(self, error: BaseException) -> str:
        """The driver's error in one line."""
