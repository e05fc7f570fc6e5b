"""Graceful shutdown. After SIGTERM (or SIGINT) the server stops accepting; requests in flight get
SQLGATE_SHUTDOWN_GRACE_S to finish. Whatever still runs then is ended by the gateway itself with a defined answer
(503 `server_shutting_down`, or an in-band error frame and `[DONE]` in a stream), instead of the bare
`500 Internal Server Error` that uvicorn writes when its own graceful-shutdown timeout cancels a request."""

from __future__ import annotations

import asyncio
import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType
from typing import Any

DRAIN_SIGNALS = (signal.SIGTERM, signal.SIGINT)
# How much later than the drain the server's own timeout should fire, so the gateway's answers are written first.
SERVER_TIMEOUT_MARGIN_S = 2.0


class Drain:
    """The requests in flight, and the timer that ends them once the grace period after a shutdown signal is over."""

    def __init__(self, grace_s: float) -> None:
        self.grace_s = grace_s
        self._tasks: set[asyncio.Task[Any]] = set()
        self.started = False
        self.expired = False
        self._timer: asyncio.TimerHandle | None = None

    def add(self, task: asyncio.Task[Any]) -> None:
        self._tasks.add(task)

    def discard(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)

    def begin(self) -> None:
        """The shutdown has started: give the requests in flight `grace_s` more. Call on the event loop."""
        if self.started:
            return
        self.started = True
        self._timer = asyncio.get_running_loop().call_later(self.grace_s, self._expire)

    def _expire(self) -> None:
        self.expired = True
        for task in list(self._tasks):
            task.cancel("sqlgate: shutdown grace period is over")

    def ended_by_drain(self, task: asyncio.Task[Any] | None) -> bool:
        """True when `task` was cancelled because the grace period ran out (not by a client or the server)."""
        return self.expired and task is not None and task in self._tasks

    def close(self) -> None:
        if self._timer is not None:
            self._timer.cancel()

    @contextmanager
    def on_shutdown_signals(self, loop: asyncio.AbstractEventLoop) -> Iterator[None]:
        """Chain in front of the server's own SIGTERM/SIGINT handlers while the app runs.

        uvicorn (and gunicorn's workers) install their handlers before the lifespan starts, so they are there to
        wrap; where none is installed, or off the main thread (tests serving in a thread), nothing is touched.
        """
        if threading.current_thread() is not threading.main_thread():
            yield
            return
        previous = {sig: signal.getsignal(sig) for sig in DRAIN_SIGNALS}
        installed: dict[signal.Signals, Any] = {}
        for sig, handler in previous.items():
            if not callable(handler):
                continue

            def chained(signum: int, frame: FrameType | None, server_handler: Any = handler) -> None:
                loop.call_soon_threadsafe(self.begin)
                server_handler(signum, frame)

            signal.signal(sig, chained)
            installed[sig] = chained
        try:
            yield
        finally:
            for sig, chained_handler in installed.items():
                if signal.getsignal(sig) is chained_handler:
                    signal.signal(sig, previous[sig])
