"""The store interface, and its one implementation strategy: a DB-API connection used from worker threads, one
operation (one transaction) at a time. SQLite's and psycopg's connections are both blocking; the event loop only
ever awaits a thread. The load is a few writes a minute (answers are batched by gateway/memory/answer_log.py)."""

from __future__ import annotations

import asyncio
import logging
import threading
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from typing import Protocol, TypeVar

from gateway.store import queries
from gateway.store.queries import Tx
from gateway.store.records import AnswerRow, FeedbackChange, FeedbackOutcome, StoreError, VerifiedPair

logger = logging.getLogger("sqlgate.store")
T = TypeVar("T")


class Store(Protocol):
    """Feedback, verified pairs and the answers they refer to; every method is one transaction."""

    @property
    def name(self) -> str: ...

    async def start(self) -> None:
        """Connect and apply the pending migrations (start-up fails if either does)."""

    async def aclose(self) -> None: ...

    async def schema_version(self) -> int: ...

    async def record_answers(self, rows: Sequence[AnswerRow]) -> None: ...

    async def answer(self, answer_id: str) -> AnswerRow | None: ...

    async def apply_feedback(self, change: FeedbackChange) -> FeedbackOutcome: ...

    async def has_live_pair_from(self, answer_id: str) -> bool: ...

    async def add_pair(self, pair: VerifiedPair) -> None: ...

    async def live_pairs(self, fingerprint: str, question_key: str, limit: int = 5) -> list[VerifiedPair]: ...

    async def exported_pairs(self, since: str | None) -> list[VerifiedPair]: ...

    async def feedback_ids(self, answer_id: str) -> list[str]: ...

    async def prune_answers(self, before: str) -> int: ...


class ThreadedStore(ABC):
    """The operations, for any engine that can open a transaction on a blocking connection."""

    name = "store"

    def __init__(self) -> None:
        self._lock = threading.Lock()  # one connection: one transaction at a time

    @abstractmethod
    def _connect(self) -> None:
        """Open the connection (called at start, and by PostgreSQL after the connection broke)."""

    @abstractmethod
    def _transaction(self) -> AbstractContextManager[Tx]:
        """One transaction: committed when the block ends, rolled back if it raises; errors become StoreError."""

    @abstractmethod
    def _close(self) -> None: ...

    @abstractmethod
    def _serialize_migrations(self, tx: Tx) -> None:
        """Make concurrent start-ups (several replicas) migrate one after the other."""

    def _migrate(self) -> None:
        """Pending migrations, each in its own transaction with its row in sqlgate_migrations."""
        with self._lock:
            while True:
                with self._transaction() as tx:
                    self._serialize_migrations(tx)
                    pending = queries.pending_migrations(queries.current_version(tx))
                    if not pending:
                        return
                    queries.apply_migration(tx, pending[0])
                logger.info("store: applied migration %d (%s)", pending[0].version, pending[0].name)

    def _locked(self, work: Callable[[Tx], T]) -> T:
        with self._lock, self._transaction() as tx:
            return work(tx)

    async def _do(self, work: Callable[[Tx], T]) -> T:
        return await asyncio.to_thread(self._locked, work)

    async def start(self) -> None:
        def begin() -> None:
            self._connect()
            self._migrate()
        await asyncio.to_thread(begin)

    async def aclose(self) -> None:
        def close() -> None:
            with self._lock:
                self._close()
        await asyncio.to_thread(close)

    async def schema_version(self) -> int:
        return await self._do(queries.current_version)

    async def record_answers(self, rows: Sequence[AnswerRow]) -> None:
        await self._do(lambda tx: queries.insert_answers(tx, rows))

    async def answer(self, answer_id: str) -> AnswerRow | None:
        return await self._do(lambda tx: queries.get_answer(tx, answer_id))

    async def apply_feedback(self, change: FeedbackChange) -> FeedbackOutcome:
        return await self._do(lambda tx: queries.apply_feedback(tx, change))

    async def has_live_pair_from(self, answer_id: str) -> bool:
        return await self._do(lambda tx: queries.live_pair_from_answer(tx, answer_id))

    async def add_pair(self, pair: VerifiedPair) -> None:
        await self._do(lambda tx: queries.add_pair(tx, pair))

    async def live_pairs(self, fingerprint: str, question_key: str, limit: int = 5) -> list[VerifiedPair]:
        return await self._do(lambda tx: queries.live_pairs(tx, fingerprint, question_key, limit))

    async def exported_pairs(self, since: str | None) -> list[VerifiedPair]:
        return await self._do(lambda tx: queries.exported_pairs(tx, since))

    async def feedback_ids(self, answer_id: str) -> list[str]:
        return await self._do(lambda tx: queries.feedback_ids(tx, answer_id))

    async def prune_answers(self, before: str) -> int:
        return await self._do(lambda tx: queries.prune_answers(tx, before))


__all__ = ["Store", "StoreError", "ThreadedStore"]
