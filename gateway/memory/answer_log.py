"""The answer log: every valid answer's id with what was asked and answered, so that feedback on that id finds it.

Written behind the request (group commit: whatever arrived while the last batch was being written goes in the
next transaction), so an answer never waits on the disk; a rating first flushes what is queued. Unrated answers
are deleted after the retention period (SQLGATE_ANSWER_RETENTION_DAYS); rated ones are kept with their rating."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from gateway.store import Store, StoreError
from gateway.store.records import AnswerRow

logger = logging.getLogger("sqlgate.memory")

MAX_QUEUED = 10_000  # a store down for long: the oldest unwritten answers go first (only their feedback is lost)
PRUNE_EVERY_S = 3600.0


class AnswerLog:
    def __init__(self, store: Store, *, retention_days: int, clock: Callable[[], float] = time.monotonic) -> None:
        self._store = store
        self._retention_days = retention_days
        self._clock = clock
        self._queued: dict[str, AnswerRow] = {}
        self._wake = asyncio.Event()
        self._writing = asyncio.Lock()
        self._pruned_at: float | None = None
        self._task: asyncio.Task[None] | None = None

    def add(self, row: AnswerRow) -> None:
        self._queued[row.id] = row
        while len(self._queued) > MAX_QUEUED:
            del self._queued[next(iter(self._queued))]
        self._wake.set()

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="sqlgate-answer-log")

    async def _run(self) -> None:
        await self._prune_if_due()
        while True:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(PRUNE_EVERY_S):
                    await self._wake.wait()
            self._wake.clear()
            await self.flush()
            await self._prune_if_due()

    async def flush(self) -> None:
        """Write everything queued now (one transaction); a store failure keeps the rows for the next try."""
        async with self._writing:
            if not self._queued:
                return
            batch = list(self._queued.values())
            try:
                await self._store.record_answers(batch)
            except StoreError as exc:
                logger.warning("answer log: %d answers not written yet: %s", len(batch), exc)
                return
            for row in batch:
                if self._queued.get(row.id) is row:
                    del self._queued[row.id]

    async def _prune_if_due(self) -> None:
        now = self._clock()
        if self._retention_days <= 0 or (self._pruned_at is not None and now - self._pruned_at < PRUNE_EVERY_S):
            return
        self._pruned_at = now
        before = (datetime.now(UTC) - timedelta(days=self._retention_days)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        try:
            removed = await self._store.prune_answers(before)
        except StoreError as exc:
            logger.warning("answer log: pruning failed: %s", exc)
            return
        if removed:
            logger.info("answer log: %d unrated answers older than %d days deleted", removed, self._retention_days)

    async def aclose(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await self.flush()
