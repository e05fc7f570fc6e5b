"""Answering from memory: the live pairs for this schema and question shape, newest first (the same question
before a re-bound one), re-bound to this question's values, then the whole check again; the first that passes is
the answer, with no model call. A store that fails is a miss, never a failed request."""

from __future__ import annotations

import logging
import uuid
from typing import Any

from gateway.answer import SqlAnswer, SqlRequest
from gateway.memory.answer_log import AnswerLog
from gateway.memory.fingerprint import schema_fingerprint, schema_names
from gateway.memory.question import question_shape
from gateway.memory.rebind import rebind
from gateway.observability.metrics import Metrics
from gateway.observability.trace_ids import trace_id_for
from gateway.pipeline.target_step import in_target
from gateway.pipeline.verdict import CheckOptions, judge_query
from gateway.store import Store, StoreError
from gateway.store.records import AnswerRow, VerifiedPair, utc_now

logger = logging.getLogger("sqlgate.memory")

MEMORY_MODEL = "memory"  # `check.answered_by` of an answer that came from a verified pair
CANDIDATE_PAIRS = 5


def memory_facts(pair: VerifiedPair, *, rebound: bool) -> dict[str, Any]:
    """`check.memory`: which pair answered, who verified it and when, and whether values were re-bound."""
    return {"id": pair.id, "verified_by": pair.verified_by, "verified_at": pair.verified_at, "origin": pair.origin,
            "rebound": rebound}


class VerifiedMemory:
    """The pipeline's `AnswerMemory` (gateway/pipeline/kept.py): recall verified answers, log given ones."""

    def __init__(self, store: Store, answers: AnswerLog, *, check: CheckOptions, metrics: Metrics,
                 enabled: bool = True) -> None:
        self._store = store
        self._answers = answers
        self._check = check
        self._metrics = metrics
        self.enabled = enabled

    def keep(self, answer_id: str, request: SqlRequest, answer: SqlAnswer, key_name: str | None) -> None:
        self._answers.add(answer_row(answer_id, request, answer, key_name=key_name, trace_id=trace_id_for(answer_id)))

    async def recall(self, request: SqlRequest) -> SqlAnswer | None:
        if not self.enabled:
            return None
        shape = question_shape(request.question)
        try:
            pairs = await self._store.live_pairs(schema_fingerprint(request.schema), shape.key, CANDIDATE_PAIRS)
        except StoreError as exc:
            logger.warning("memory lookup failed, answering without it: %s", exc)
            self._metrics.memory("error")
            return None
        names = schema_names(request.schema)
        refused = False
        # The same question first (nothing to re-bind), then the newest.
        for pair in sorted(pairs, key=lambda p: question_shape(p.question).values != shape.values):
            query = rebind(pair.source_query, question_shape(pair.question), shape, names)
            if query is None:
                continue
            verdict = judge_query(query, "stop", schema=request.schema, dialect=request.dialect, options=self._check)
            verdict = await in_target(verdict, schema=request.schema, dialect=request.dialect, options=self._check)
            if verdict.error_code is not None:
                refused = True  # the check moved on since it was verified, or the re-bound query fails it
                continue
            self._metrics.memory("hit")
            check = {**verdict.check, "repair": None, "agreement": None, "vote": None, "answered_by": MEMORY_MODEL,
                     "schema_scope": None, "source": "verified",
                     "memory": memory_facts(pair, rebound=query != pair.source_query)}
            return SqlAnswer(query=verdict.query, source_query=verdict.source_query, raw_text=query,
                             finish_reason="stop", prompt_tokens=0, completion_tokens=0, check=check,
                             source="verified", answered_by=MEMORY_MODEL, verified_id=pair.id)
        self._metrics.memory("failed_check" if refused else "miss")
        return None


def new_pair_id() -> str:
    return "vp_" + uuid.uuid4().hex


def answer_row(answer_id: str, request: SqlRequest, answer: SqlAnswer, *, key_name: str | None,
               trace_id: str | None) -> AnswerRow:
    """What the answer log keeps of one valid answer."""
    return AnswerRow(id=answer_id, created_at=utc_now(), key_name=key_name, question=request.question,
                     schema=request.schema, fingerprint=schema_fingerprint(request.schema), dialect=request.dialect,
                     query=answer.query, source_query=answer.source_query, source=answer.source,
                     verified_id=answer.verified_id, trace_id=trace_id)
