"""Cancelling a request's work when its client goes away (and with it the upstream call, which aborts vLLM's
generation)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import TypeVar

from fastapi import Request

from gateway.errors import ClientDisconnected

T = TypeVar("T")


async def until_disconnect(request: Request, work: Awaitable[T]) -> T:
    """Await `work` in this task, cancelling it (and so the upstream request) if the client goes away first.

    One watcher task per request, not a second task for the work: the request's own task is what a graceful
    shutdown cancels (gateway/drain.py), and the work must go with it."""
    current = asyncio.current_task()
    assert current is not None
    client_gone = finished = False

    async def watch() -> None:
        nonlocal client_gone
        while (await request.receive())["type"] != "http.disconnect":
            pass
        if not finished:  # a cancel now would hit whatever this task awaits after the work
            client_gone = True
            current.cancel()

    watcher = asyncio.create_task(watch())
    try:
        result = await work
        finished = True
        return result
    except asyncio.CancelledError:
        if not client_gone:
            raise
        current.uncancel()
        raise ClientDisconnected("The client closed the request.") from None
    finally:
        watcher.cancel()
