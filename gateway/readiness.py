"""Readiness: whether vLLM really generates, probed on demand and in the background."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable

from gateway.observability.metrics import Metrics
from gateway.prompt import render_prompt
from gateway.upstream import Sleep, UpstreamClient

logger = logging.getLogger("sqlgate")

READINESS_QUESTION = ("How many rows are there?", "CREATE TABLE t (x int)")


class Readiness:
    """Whether vLLM really generates (any replica); one probe round at a time, its result kept for `cache_s`."""

    def __init__(self, upstream: UpstreamClient, model: str, timeout_s: float, cache_s: float,
                 metrics: Metrics) -> None:
        self._upstream = upstream
        self._payload = {"model": model, "prompt": render_prompt(*READINESS_QUESTION), "max_tokens": 1,
                         "temperature": 0.0}
        self._timeout_s = timeout_s
        self._cache_s = cache_s
        self._metrics = metrics
        self._checked_at = -float("inf")
        self._ready = False
        self._lock = asyncio.Lock()

    async def check(self) -> bool:
        async with self._lock:
            if time.monotonic() - self._checked_at >= self._cache_s:
                self._ready = await self._upstream.probe(self._payload, self._timeout_s)
                self._checked_at = time.monotonic()
                self._metrics.set_ready(self._ready)
            return self._ready

    async def probe_back(self) -> None:
        """Probe only the replicas marked down, so one that generates again takes requests again."""
        down = self._upstream.replicas.down()
        if down:
            await self._upstream.probe_replicas(self._payload, self._timeout_s, down)

    @property
    def last(self) -> bool:
        """The last probe's verdict without probing (False before the first): cheap enough for every request."""
        return self._ready


async def watch_readiness(readiness: Readiness, interval_s: float, sleep: Sleep = asyncio.sleep,
                          on_ready: Callable[[], Awaitable[None]] | None = None) -> None:
    """Probe the upstream every `interval_s` for the life of the app (cancelled by the lifespan at shutdown).
    `on_ready` runs whenever the upstream becomes ready (at start, and after each outage: a restarted vLLM may
    serve another model folder)."""
    was_ready = False
    while True:
        try:
            ready = await readiness.check()
            if ready and not was_ready and on_ready is not None:
                await on_ready()
            was_ready = ready
        except Exception:  # a probe that breaks must not end the watch; it reads as not ready
            logger.exception("readiness probe failed")
        await sleep(interval_s)


async def watch_replicas(readiness: Readiness, interval_s: float, sleep: Sleep = asyncio.sleep) -> None:
    """Every `interval_s`, probe the replicas marked down (cancelled by the lifespan at shutdown)."""
    while True:
        await sleep(interval_s)
        try:
            await readiness.probe_back()
        except Exception:  # a probe that breaks must not end the watch; the replica stays down
            logger.exception("replica probe-back failed")
