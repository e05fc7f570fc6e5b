"""A small bounded pool of connections to a check database: at most `size` connections, a connection taken only
if one frees within `wait_s` (else the check is skipped, never queued behind a slow database), a connection that
failed closed rather than reused."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Generic, TypeVar

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
