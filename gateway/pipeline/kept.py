"""What the pipeline keeps between requests and looks up before asking the model:

- the verified-query memory (gateway/memory), reached through `AnswerMemory` so that the pipeline imports nothing
  of it: answers a person vouched for, re-checked; and the answer log that lets feedback name an answer;
- the exact-answer cache: an answer the model gave for exactly this prompt, settings and model, re-checked on
  every hit. A refusal is kept only for the short refusal TTL, and never when the upstream caused it (the sampling
  call failed or ran out of time: after vLLM recovers, the same request must be answered afresh); a
  low-confidence refusal not at all (the next request votes again)."""

from __future__ import annotations

from typing import Any, Protocol

import orjson

from gateway.answer import Repair, SqlAnswer, SqlRequest
from gateway.cache import ResponseCache, cache_key
from gateway.observability.metrics import Metrics
from gateway.pipeline.candidates import Candidate
from gateway.pipeline.target_step import in_target
from gateway.pipeline.verdict import CheckOptions, Verdict, judge_query
from gateway.pipeline.voting import Settled, check_object
from gateway.request_record import RequestRecord


class AnswerMemory(Protocol):
    async def recall(self, request: SqlRequest) -> SqlAnswer | None:
        """A verified answer to this request, already re-checked; None to ask the model."""
        ...

    def keep(self, answer_id: str, request: SqlRequest, answer: SqlAnswer, key_name: str | None) -> None:
        """Log a valid answer under its id, for the feedback that may name it."""


class NoMemory:
    async def recall(self, request: SqlRequest) -> SqlAnswer | None:
        return None

    def keep(self, answer_id: str, request: SqlRequest, answer: SqlAnswer, key_name: str | None) -> None:
        return None


class CachedAnswers:
    def __init__(self, cache: ResponseCache, *, key_settings: str, refusal_ttl_s: int, check: CheckOptions,
                 model: str, metrics: Metrics) -> None:
        self._cache = cache
        self._key_settings = key_settings
        self._refusal_ttl_s = refusal_ttl_s
        self._check = check
        self._model = model
        self._metrics = metrics

    def key(self, model_fingerprint: str, request: SqlRequest) -> str:
        return cache_key(model=model_fingerprint, settings=self._key_settings, dialect=request.dialect,
                         prompt=request.prompt)

    async def lookup(self, request: SqlRequest, key: str, record: RequestRecord) -> SqlAnswer | None:
        """A stored answer, re-checked now: an entry the current check no longer passes is dropped."""
        if not self._cache.enabled:
            return None  # no hit or miss to count: a cache that is off must not look like one that never hits
        stored = await self._cache.get(key)
        answer = None
        if stored is not None:
            try:
                verdict = judge_query(str(stored["source_query"]), stored["finish_reason"], schema=request.schema,
                                      dialect=request.dialect, options=self._check)
            except (KeyError, TypeError, ValueError):
                verdict = None  # written by an older version: answer afresh
            if verdict is not None:
                verdict = await in_target(verdict, schema=request.schema, dialect=request.dialect,
                                          options=self._check)
                answer = self._from_store(request, stored, verdict)
        self._metrics.cache(answer is not None)
        record.cache = "hit" if answer is not None else "miss"
        return answer

    def _from_store(self, request: SqlRequest, stored: dict[str, Any], verdict: Verdict) -> SqlAnswer | None:
        try:
            stored_repair = stored.get("repair")
            repair = Repair(**stored_repair) if isinstance(stored_repair, dict) else None
            answered_by = str(stored["answered_by"]) if stored.get("answered_by") else None
            stored_agreement = stored.get("agreement")
            agreement = dict(stored_agreement) if isinstance(stored_agreement, dict) else None
            settled = Settled(Candidate(verdict, None, ""), repair, agreement, answered_by=answered_by)
            answer = SqlAnswer(
                query=verdict.query, source_query=verdict.source_query, raw_text=str(stored["raw_text"]),
                finish_reason=stored["finish_reason"], prompt_tokens=int(stored["prompt_tokens"]),
                completion_tokens=int(stored["completion_tokens"]),
                check=check_object(verdict, settled, model=self._model, source="cache",
                                   schema_scope=request.schema_scope),
                repair=repair, cached=True,
                extra_tokens={k: int(v) for k, v in dict(stored.get("extra_tokens") or {}).items()},
                agreement=agreement, answered_by=answered_by, source="cache",
            )
        except (KeyError, TypeError, ValueError):
            return None  # written by an older version: answer afresh
        if stored.get("valid") and not answer.valid:
            return None  # passed an older check and fails this one: never serve it again
        return answer

    async def remember(self, key: str, answer: SqlAnswer) -> None:
        if not self._cache.enabled:
            return
        value = {**answer.for_cache(), "valid": answer.valid}
        if answer.valid:
            await self._cache.set(key, value)
            return
        if answer.error_code == "low_confidence" or self._refusal_ttl_s <= 0:
            return
        if answer.repair is not None and answer.repair.incomplete:
            return  # the sampling call failed or timed out: the refusal says nothing about the question
        await self._cache.set(key, value, ttl_s=self._refusal_ttl_s)


def key_settings(*parts: object) -> str:
    """The settings that generate and judge an answer, as one text: part of every cache key."""
    return orjson.dumps(list(parts)).decode()
