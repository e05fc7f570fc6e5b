"""The one service every route calls: caps -> cache -> prompt -> vLLM -> SQL check -> cache, for plain and
streaming requests."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from dataclasses import asdict, dataclass, field
from typing import Any

from gateway.cache import ResponseCache, cache_key
from gateway.errors import InvalidRequest, SqlRejected, UpstreamError
from gateway.limits import InputCaps
from gateway.observability.metrics import Metrics
from gateway.observability.tracing import RequestTrace, RequestTracer
from gateway.prompt import TEMPLATE_VERSION, render_prompt
from gateway.request_record import RequestRecord
from gateway.settings import GenerationParams
from gateway.sql_check import SUPPORTED_DIALECTS, SqlPolicy, canonical_schema, check_sql, extract_sql
from gateway.upstream import UpstreamClient, UpstreamStream


@dataclass(frozen=True)
class SqlRequest:
    """A request that passed the caps: everything needed to answer it, decided once."""

    question: str
    schema: str
    dialect: str
    prompt: str
    cache_key: str


@dataclass
class SqlAnswer:
    query: str
    raw_text: str
    finish_reason: str | None
    prompt_tokens: int
    completion_tokens: int
    check: dict[str, Any]
    cached: bool = False
    upstream_latency_s: float = 0.0
    ttft_s: float | None = None

    @property
    def usage(self) -> dict[str, int]:
        return {
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "total_tokens": self.prompt_tokens + self.completion_tokens,
        }

    def for_cache(self) -> dict[str, Any]:
        stored = asdict(self)
        for transient in ("cached", "upstream_latency_s", "ttft_s"):
            stored.pop(transient)
        return stored

    @classmethod
    def from_cache(cls, stored: dict[str, Any]) -> SqlAnswer:
        return cls(**stored, cached=True)


class SqlService:
    def __init__(
        self,
        *,
        upstream: UpstreamClient,
        cache: ResponseCache,
        caps: InputCaps,
        generation: GenerationParams,
        upstream_model: str,
        model_id: str,
        policy: SqlPolicy,
        default_dialect: str,
        metrics: Metrics,
        tracer: RequestTracer,
    ) -> None:
        self._upstream = upstream
        self._cache = cache
        self._caps = caps
        self._generation = generation
        self._generation_fields = generation.as_upstream_fields()
        self._generation_fingerprint = generation.model_dump_json()
        self._upstream_model = upstream_model
        self._model_id = model_id
        self._policy = policy
        self._default_dialect = default_dialect
        self._metrics = metrics
        self._tracer = tracer

    @property
    def generation(self) -> GenerationParams:
        return self._generation

    def prepare(
        self, question: str, schema: str, dialect: str | None, *, question_param: str, schema_param: str = "schema"
    ) -> SqlRequest:
        """Apply the caps and render the training prompt; raises before anything reaches vLLM."""
        self._caps.check_fields(question, schema, question_param=question_param, schema_param=schema_param)
        dialect = (dialect or self._default_dialect).lower()
        if dialect not in SUPPORTED_DIALECTS:
            raise InvalidRequest(
                f"Unknown SQL dialect '{dialect[:40]}'. Supported: {', '.join(sorted(SUPPORTED_DIALECTS))}.",
                param="dialect",
                code="unsupported_dialect",
            )
        prompt = render_prompt(question, schema)
        self._caps.check_prompt(prompt, param=schema_param, schema=schema.strip())
        return SqlRequest(question=question, schema=schema, dialect=dialect, prompt=prompt,
                          cache_key=self._cache_key(question, schema, dialect))

    def _cache_key(self, question: str, schema: str, dialect: str) -> str:
        if not self._cache.enabled:
            return ""  # nothing will be looked up: spare the schema's canonical form
        return cache_key(
            model=self._upstream_model,
            template_version=TEMPLATE_VERSION,
            generation=self._generation_fingerprint,
            policy=self._policy.value,
            dialect=dialect,
            question=question,
            canonical_schema=canonical_schema(schema),
        )

    def _payload(self, request: SqlRequest, *, stream: bool) -> dict[str, Any]:
        payload: dict[str, Any] = {"model": self._upstream_model, "prompt": request.prompt,
                                   **self._generation_fields}
        if stream:
            payload["stream"] = True
            payload["stream_options"] = {"include_usage": True}
        return payload

    def _finish(self, request: SqlRequest, raw_text: str, finish_reason: str | None, usage: dict[str, Any],
                latency_s: float, ttft_s: float | None) -> SqlAnswer:
        query = extract_sql(raw_text)
        check = check_sql(query, schema=request.schema, dialect=request.dialect, policy=self._policy)
        check_dict = {**check.as_dict(), "query": query, "error_code": check.error_code}
        return SqlAnswer(
            query=query,
            raw_text=raw_text,
            finish_reason=finish_reason,
            prompt_tokens=int(usage.get("prompt_tokens") or 0),
            completion_tokens=int(usage.get("completion_tokens") or 0),
            check=check_dict,
            upstream_latency_s=latency_s,
            ttft_s=ttft_s,
        )

    async def _lookup(self, request: SqlRequest, record: RequestRecord) -> SqlAnswer | None:
        if not self._cache.enabled:
            return None  # no hit or miss to count: a cache that is off must not look like one that never hits
        stored = await self._cache.get(request.cache_key)
        self._metrics.cache(stored is not None)
        record.cache = "hit" if stored is not None else "miss"
        if stored is None:
            return None
        try:
            return SqlAnswer.from_cache(stored)
        except TypeError:
            return None  # written by an older version: answer afresh

    async def _remember(self, request: SqlRequest, answer: SqlAnswer) -> None:
        if self._cache.enabled and answer.finish_reason != "length":  # a truncated answer is not worth keeping
            await self._cache.set(request.cache_key, answer.for_cache())

    def _account(self, answer: SqlAnswer, record: RequestRecord) -> None:
        """Tokens, check outcome and trace facts for one answer, then reject it if the check failed."""
        outcome = answer.check.get("error_code") or "valid"
        record.prompt_tokens = answer.prompt_tokens
        record.completion_tokens = answer.completion_tokens
        record.sql_outcome = str(outcome)
        record.answer = answer
        self._metrics.sql_check(str(outcome))
        if not answer.cached:
            self._metrics.add_tokens(answer.prompt_tokens, answer.completion_tokens)

    @staticmethod
    def reject_if_invalid(answer: SqlAnswer) -> None:
        code = answer.check.get("error_code")
        if not code:
            return
        advisory = ("no_where_clause",) if code == "ungrounded_sql" else (
            "unknown_table", "unknown_column", "no_where_clause")
        problems = [p["message"] for p in answer.check.get("problems", []) if p.get("code") not in advisory]
        reason = "; ".join(problems) or "it did not pass the SQL check"
        raise SqlRejected(f"The generated SQL was rejected: {reason}", code=str(code),
                          extra={"check": answer.check})

    def _trace(self, request: SqlRequest, record: RequestRecord) -> RequestTrace:
        return self._tracer.start(record, question=request.question, schema=request.schema)

    async def answer(self, request: SqlRequest, record: RequestRecord) -> SqlAnswer:
        """A whole answer (cache or vLLM); raises SqlRejected when the SQL fails the check."""
        trace = self._trace(request, record)
        answer = await self._lookup(request, record)
        if answer is None:
            trace.start_generation(model=self._upstream_model, parameters=self._generation_fields)
            started = time.perf_counter()
            try:
                body = await self._upstream.complete(self._payload(request, stream=False))
            except Exception:
                self._metrics.observe_upstream("error", time.perf_counter() - started)
                raise
            latency = time.perf_counter() - started
            self._metrics.observe_upstream("ok", latency)
            choice = body["choices"][0]
            text = choice.get("text") if isinstance(choice, dict) else None
            if not isinstance(text, str):
                raise UpstreamError("The model server's answer has no text.")
            answer = self._finish(request, text, choice.get("finish_reason"), body.get("usage") or {}, latency,
                                  None)
            await self._remember(request, answer)
        self._account(answer, record)
        self.reject_if_invalid(answer)
        return answer

    async def open_stream(self, request: SqlRequest, record: RequestRecord) -> SqlStream:
        """Open the upstream stream now (so failures before the first byte are plain HTTP errors)."""
        trace = self._trace(request, record)
        cached = await self._lookup(request, record)
        if cached is not None:
            return SqlStream(self, request, record, trace, cached=cached)
        trace.start_generation(model=self._upstream_model, parameters=self._generation_fields)
        started = time.perf_counter()
        try:
            upstream = await self._upstream.open_stream(self._payload(request, stream=True))
        except Exception:
            self._metrics.observe_upstream("error", time.perf_counter() - started)
            raise
        return SqlStream(self, request, record, trace, upstream=upstream, started=started)


@dataclass
class SqlStream:
    """Text deltas as vLLM produces them, then the checked answer once the stream is finished."""

    service: SqlService
    request: SqlRequest
    record: RequestRecord
    trace: RequestTrace
    cached: SqlAnswer | None = None
    upstream: UpstreamStream | None = None
    started: float = 0.0
    _parts: list[str] = field(default_factory=list)
    _finish_reason: str | None = None
    _usage: dict[str, Any] = field(default_factory=dict)
    _ttft_s: float | None = None

    async def deltas(self) -> AsyncIterator[str]:
        if self.cached is not None:
            yield self.cached.raw_text
            return
        assert self.upstream is not None
        async for event in self.upstream.events():
            usage = event.get("usage")
            if isinstance(usage, dict):
                self._usage = usage
            choices = event.get("choices")
            if not isinstance(choices, list) or not choices:
                continue
            choice = choices[0]
            if not isinstance(choice, dict):
                raise UpstreamError("The model server sent a malformed stream frame.")
            if choice.get("finish_reason"):
                self._finish_reason = str(choice["finish_reason"])
            text = choice.get("text")
            if isinstance(text, str) and text:
                if self._ttft_s is None:
                    self._ttft_s = time.perf_counter() - self.started
                    self.record.ttft_s = self._ttft_s
                    self.trace.first_token()
                    self.service._metrics.observe_ttft(self.record.route, self._ttft_s)
                self._parts.append(text)
                yield text

    async def finish(self) -> SqlAnswer:
        """The checked answer; call after `deltas()` is exhausted. Does not raise on a failed check."""
        if self.cached is not None:
            answer = self.cached
        else:
            latency = time.perf_counter() - self.started
            self.service._metrics.observe_upstream("ok", latency)
            answer = self.service._finish(self.request, "".join(self._parts), self._finish_reason, self._usage,
                                          latency, self._ttft_s)
            await self.service._remember(self.request, answer)
        self.service._account(answer, self.record)
        return answer

    async def aclose(self) -> None:
        if self.upstream is not None:
            await self.upstream.aclose()
