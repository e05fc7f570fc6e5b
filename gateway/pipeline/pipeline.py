"""The one answer pipeline every route uses, plain or streaming:

    prepare -> look up (re-checked) -> generate -> finish: judge, candidates when greedy fails, remember, account

A stream is a way of delivering the answer, not a second answer: both paths end in `finish`, and the routes send
only `SqlAnswer.query` of a valid answer, so the text a stream delivers is exactly the plain answer's and nothing
that failed the check ever leaves the gateway.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import replace
from typing import Any

import orjson

from gateway.answer import Generation, Repair, SqlAnswer, SqlRequest
from gateway.cache import ResponseCache, cache_key
from gateway.errors import InvalidRequest, SqlRejected, UpstreamError
from gateway.limits import InputCaps
from gateway.observability.metrics import Metrics
from gateway.observability.tracing import RequestTracer
from gateway.pipeline.candidates import Candidate, Draw
from gateway.pipeline.escalation import Escalation
from gateway.pipeline.fingerprint import ModelFingerprint
from gateway.pipeline.flights import FlightAbandoned, Flights
from gateway.pipeline.verdict import (
    CHECK_VERSION,
    CheckOptions,
    Verdict,
    in_target_engine,
    judge,
    judge_query,
    with_target,
)
from gateway.pipeline.voting import CandidateBudget, Settled, VoteStage, candidate_call_fields
from gateway.prompt import TEMPLATE_VERSION, render_prompt
from gateway.request_record import RequestRecord
from gateway.scope import SameText, SchemaScoper
from gateway.settings import GenerationParams
from gateway.sql_check import SUPPORTED_DIALECTS
from gateway.sql_check.target import TargetCheck
from gateway.upstream import UpstreamClient, UpstreamStream


class AnswerPipeline:
    def __init__(
        self,
        *,
        upstream: UpstreamClient,
        cache: ResponseCache,
        caps: InputCaps,
        generation: GenerationParams,
        candidates: CandidateBudget,
        upstream_model: str,
        check: CheckOptions,
        default_dialect: str,
        metrics: Metrics,
        tracer: RequestTracer,
        fingerprint: ModelFingerprint,
        scoper: SchemaScoper,
        escalation: Escalation | None = None,
    ) -> None:
        self._upstream = upstream
        self._cache = cache
        self._caps = caps
        self._generation = generation
        self._greedy_fields = generation.as_upstream_fields()
        self._candidates = candidates
        self._scoper = scoper
        self._schemas = SameText()
        self._votes = VoteStage(upstream=upstream, budget=candidates, metrics=metrics, escalation=escalation,
                                fields=candidate_call_fields(generation, candidates.k), payload=self._payload)
        self._upstream_model = upstream_model
        self._check = check
        self._default_dialect = default_dialect
        self._metrics = metrics
        self._tracer = tracer
        self._fingerprint = fingerprint
        self._flights = Flights()
        # The settings that generate and judge an answer: part of every cache key, with the prompt and the model.
        self._key_settings = orjson.dumps([TEMPLATE_VERSION, CHECK_VERSION, generation.model_dump(mode="json"),
                                           check.policy.value, check.grounding, candidates.k,
                                           candidates.strategy, candidates.policy,
                                           candidates.min_agreement]).decode()

    @property
    def generation(self) -> GenerationParams:
        return self._generation

    @property
    def flights(self) -> Flights:
        return self._flights

    # ---- prepare ------------------------------------------------------------------------------------------

    def prepare(self, question: str, schema: str, dialect: str | None, *, question_param: str,
                schema_param: str = "schema", tables: list[str] | None = None) -> SqlRequest:
        """Apply the caps, choose what of the schema the model sees (`tables`: pinned by the caller) and render the
        training prompt; raises before anything reaches vLLM."""
        self._caps.check_fields(question, schema, question_param=question_param, schema_param=schema_param)
        schema = self._schemas.same(schema)
        dialect = (dialect or self._default_dialect).lower()
        if dialect not in SUPPORTED_DIALECTS:
            raise InvalidRequest(
                f"Unknown SQL dialect '{dialect[:40]}'. Supported: {', '.join(sorted(SUPPORTED_DIALECTS))}.",
                param="dialect",
                code="unsupported_dialect",
            )
        scope = self._scoper.scope(question, schema, tables, render_prompt)
        prompt = render_prompt(question, scope.text)
        self._caps.check_prompt(prompt, param=schema_param, schema=scope.text.strip())
        return SqlRequest(question=question, schema=schema, dialect=dialect, prompt=prompt,
                          prompt_schema=scope.text, schema_scope=scope.as_dict())

    # ---- the whole answer ---------------------------------------------------------------------------------

    async def answer(self, request: SqlRequest, record: RequestRecord) -> SqlAnswer:
        """The checked answer (from the cache, a flight in progress, or vLLM); a refusal is an answer too."""
        pending = await self.begin(request, record, stream=False)
        try:
            return await pending.result()
        finally:
            await pending.aclose()

    async def begin(self, request: SqlRequest, record: RequestRecord, *, stream: bool) -> PendingAnswer:
        """Everything up to the first upstream byte: a failure here is a plain HTTP error. With `stream`, vLLM's
        stream is opened now and read by `PendingAnswer.result()`."""
        self._tracer.start(record, question=request.question, schema=request.sent_schema)
        key = self._key(request)
        cached = await self.lookup(request, key, record)
        if cached is not None:
            return PendingAnswer(self, request, record, key, ready=cached)
        flight = self._flights.in_flight(key)
        if flight is not None:
            return PendingAnswer(self, request, record, key, joined=flight)
        landing = self._flights.lead(key)
        if not stream:
            return PendingAnswer(self, request, record, key, landing=landing)
        try:
            upstream, started = await self._open_upstream_stream(request, record)
        except BaseException:
            self._flights.land(key, landing, None)
            raise
        return PendingAnswer(self, request, record, key, landing=landing, upstream=upstream, started=started)

    # ---- look up ------------------------------------------------------------------------------------------

    def _key(self, request: SqlRequest) -> str:
        # The fingerprint is read per request: the readiness watcher names the served folder once vLLM is up.
        return cache_key(model=self._fingerprint.current, settings=self._key_settings, dialect=request.dialect,
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
                answer = self._from_store(request, stored, await self.in_target(verdict, request))
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
            answer = SqlAnswer(
                query=verdict.query, source_query=verdict.source_query, raw_text=str(stored["raw_text"]),
                finish_reason=stored["finish_reason"], prompt_tokens=int(stored["prompt_tokens"]),
                completion_tokens=int(stored["completion_tokens"]),
                check=self._check_object(verdict, Settled(Candidate(verdict, None, ""), repair, agreement,
                                                          answered_by=answered_by), request),
                repair=repair, cached=True,
                extra_tokens={k: int(v) for k, v in dict(stored.get("extra_tokens") or {}).items()},
                agreement=agreement, answered_by=answered_by,
            )
        except (KeyError, TypeError, ValueError):
            return None  # written by an older version: answer afresh
        if stored.get("valid") and not answer.valid:
            return None  # passed an older check and fails this one: never serve it again
        return answer

    async def remember(self, key: str, answer: SqlAnswer) -> None:
        # A low-confidence refusal depends on the samples of this one vote: the next request votes again.
        if self._cache.enabled and answer.error_code != "low_confidence":
            await self._cache.set(key, {**answer.for_cache(), "valid": answer.valid})

    # ---- generate -----------------------------------------------------------------------------------------

    def _payload(self, request: SqlRequest, fields: dict[str, Any], *, stream: bool = False) -> dict[str, Any]:
        payload: dict[str, Any] = {"model": self._upstream_model, "prompt": request.prompt, **fields}
        if stream:
            payload["stream"] = True
            payload["stream_options"] = {"include_usage": True}
        return payload

    async def generate(self, request: SqlRequest, record: RequestRecord) -> Generation:
        """One greedy completion, read whole."""
        trace = record.trace
        if trace is not None:
            trace.start_generation(model=self._upstream_model, parameters=self._greedy_fields)
        started = time.perf_counter()
        try:
            body = await self._upstream.complete(self._payload(request, self._greedy_fields))
        except Exception:
            self._metrics.observe_upstream("error", time.perf_counter() - started)
            raise
        latency = time.perf_counter() - started
        self._metrics.observe_upstream("ok", latency)
        choice = body["choices"][0]
        text = choice.get("text") if isinstance(choice, dict) else None
        if not isinstance(text, str):
            raise UpstreamError("The model server's answer has no text.")
        usage = body.get("usage") or {}
        return Generation(raw_text=text, finish_reason=choice.get("finish_reason"),
                          prompt_tokens=int(usage.get("prompt_tokens") or 0),
                          completion_tokens=int(usage.get("completion_tokens") or 0), latency_s=latency)

    async def _open_upstream_stream(self, request: SqlRequest, record: RequestRecord
                                    ) -> tuple[UpstreamStream, float]:
        trace = record.trace
        if trace is not None:
            trace.start_generation(model=self._upstream_model, parameters=self._greedy_fields)
        started = time.perf_counter()
        try:
            upstream = await self._upstream.open_stream(self._payload(request, self._greedy_fields, stream=True))
        except Exception:
            self._metrics.observe_upstream("error", time.perf_counter() - started)
            raise
        return upstream, started

    async def collect(self, upstream: UpstreamStream, started: float, record: RequestRecord) -> Generation:
        """Read vLLM's stream to its end; the text is held back here until the whole answer is checked."""
        parts: list[str] = []
        finish_reason: str | None = None
        usage: dict[str, Any] = {}
        ttft: float | None = None
        try:
            async for event in upstream.events():
                if isinstance(event.get("usage"), dict):
                    usage = event["usage"]
                choices = event.get("choices")
                if not isinstance(choices, list) or not choices:
                    continue
                choice = choices[0]
                if not isinstance(choice, dict):
                    raise UpstreamError("The model server sent a malformed stream frame.")
                if choice.get("finish_reason"):
                    finish_reason = str(choice["finish_reason"])
                text = choice.get("text")
                if isinstance(text, str) and text:
                    if ttft is None:
                        ttft = time.perf_counter() - started
                        record.ttft_s = ttft
                        if record.trace is not None:
                            record.trace.first_token()
                        self._metrics.observe_ttft(record.route, ttft)
                    parts.append(text)
        except Exception:
            self._metrics.observe_upstream("error", time.perf_counter() - started)
            raise
        latency = time.perf_counter() - started
        self._metrics.observe_upstream("ok", latency)
        return Generation(raw_text="".join(parts), finish_reason=finish_reason,
                          prompt_tokens=int(usage.get("prompt_tokens") or 0),
                          completion_tokens=int(usage.get("completion_tokens") or 0), latency_s=latency,
                          ttft_s=ttft)

    # ---- finish -------------------------------------------------------------------------------------------

    def judged(self, request: SqlRequest) -> Callable[[str, str | None], Verdict]:
        """The whole check for one request's candidate texts."""
        def judged(text: str, finish_reason: str | None) -> Verdict:
            return judge(text, finish_reason, schema=request.schema, dialect=request.dialect, options=self._check)
        return judged

    def start_draw(self, request: SqlRequest) -> asyncio.Task[Draw] | None:
        """With the `always` policy, the sampling call, started now so that it runs next to the greedy call."""
        return self._votes.start_draw(request, self.judged(request))

    async def finish(self, request: SqlRequest, generation: Generation, record: RequestRecord,
                     drawing: asyncio.Task[Draw] | None = None) -> SqlAnswer:
        """Judge the greedy answer; vote it against the samples when the policy says so or it fails for a reason
        sampling can fix. `drawing` is the sampling call `start_draw` began (else it is made here if needed)."""
        judged = self.judged(request)
        verdict = judged(generation.raw_text, generation.finish_reason)
        if verdict.check.get("compiled") is False:
            self._metrics.compile_failure()
        greedy = Candidate(verdict, generation.finish_reason, generation.raw_text)
        settled = await self._votes.settle(request, greedy, judged, drawing)
        chosen = settled.chosen
        verdict = await self.in_target(chosen.verdict, request)
        return SqlAnswer(
            query=verdict.query, source_query=verdict.source_query, raw_text=chosen.raw_text,
            finish_reason=chosen.finish_reason, prompt_tokens=generation.prompt_tokens,
            completion_tokens=generation.completion_tokens, check=self._check_object(verdict, settled, request),
            repair=settled.repair, upstream_latency_s=generation.latency_s, ttft_s=generation.ttft_s,
            extra_tokens=settled.extra_tokens, agreement=settled.agreement,
            answered_by=settled.answered_by or self._upstream_model,
        )

    async def in_target(self, verdict: Verdict, request: SqlRequest) -> Verdict:
        """The configured check database's word on the answer, asked in a worker thread under a deadline: a slow
        or unreachable database leaves the answer at `target_verified: "translation"` (with the reason), never
        holds the request past the deadline nor blocks the event loop."""
        engines = self._check.engines
        if engines is None or verdict.error_code is not None or not engines.remote(request.dialect):
            return verdict
        call = asyncio.to_thread(in_target_engine, verdict, schema=request.schema, dialect=request.dialect,
                                 engines=engines)
        try:
            return await asyncio.wait_for(call, timeout=engines.timeout_s)
        except TimeoutError:
            return with_target(verdict, TargetCheck.translation(
                f"the check database did not answer within {engines.timeout_s} s"), request.dialect)

    def _check_object(self, verdict: Verdict, settled: Settled, request: SqlRequest) -> dict[str, Any]:
        repair = settled.repair
        return {**verdict.check, "repair": repair.as_dict() if repair is not None else None,
                "agreement": settled.agreement, "vote": settled.vote,
                "answered_by": settled.answered_by or self._upstream_model,
                "schema_scope": request.schema_scope or None}

    def account(self, answer: SqlAnswer, record: RequestRecord) -> None:
        """Tokens, check outcome and trace facts for one answer, once per request."""
        outcome = answer.error_code or "valid"
        record.prompt_tokens = answer.usage["prompt_tokens"]
        record.completion_tokens = answer.usage["completion_tokens"]
        record.sql_outcome = outcome
        record.answer = answer
        self._metrics.sql_check(outcome)
        if answer.error_code is not None:
            self._metrics.refusal(answer.error_code)
        if not answer.cached:
            self._metrics.add_tokens(record.prompt_tokens, record.completion_tokens)

    @staticmethod
    def refusal(answer: SqlAnswer) -> SqlRejected | None:
        """The typed 422 for an answer that failed the check (its failing text only inside `error.check`)."""
        code = answer.error_code
        if code is None:
            return None
        problems = [str(p.get("message")) for p in answer.check.get("problems", [])
                    if p.get("code") != "no_where_clause"]
        reason = "; ".join(dict.fromkeys(problems)) or "it did not pass the SQL check"
        return SqlRejected(f"The generated SQL was rejected: {reason}", code=code, extra={"check": answer.check})


class PendingAnswer:
    """An answer on its way: ready (cache), joined (another request's flight), or led by this request."""

    def __init__(self, pipeline: AnswerPipeline, request: SqlRequest, record: RequestRecord, key: str, *,
                 ready: SqlAnswer | None = None, joined: asyncio.Future[SqlAnswer] | None = None,
                 landing: asyncio.Future[SqlAnswer] | None = None, upstream: UpstreamStream | None = None,
                 started: float = 0.0) -> None:
        self._pipeline = pipeline
        self._request = request
        self._record = record
        self._key = key
        self._ready = ready
        self._joined = joined
        self._landing = landing
        self._upstream = upstream
        self._started = started

    async def result(self) -> SqlAnswer:
        answer = await self._obtain()
        self._pipeline.account(answer, self._record)
        return answer

    async def _obtain(self) -> SqlAnswer:
        if self._ready is not None:
            return self._ready
        if self._joined is not None:
            try:
                shared = await self._pipeline.flights.wait(self._joined)
            except FlightAbandoned:
                pass  # the leader's client went away: answer this request itself
            else:
                self._record.cache = "joined"
                return replace(shared, cached=True)
            self._landing = self._pipeline.flights.lead(self._key)
        return await self._lead()

    async def _lead(self) -> SqlAnswer:
        pipeline, landing = self._pipeline, self._landing
        assert landing is not None
        drawing = pipeline.start_draw(self._request)
        try:
            if self._upstream is not None:
                generation = await pipeline.collect(self._upstream, self._started, self._record)
            else:
                generation = await pipeline.generate(self._request, self._record)
            answer = await pipeline.finish(self._request, generation, self._record, drawing)
            await pipeline.remember(self._key, answer)
        except BaseException:
            if drawing is not None:
                drawing.cancel()
            # Whatever stopped this request (an upstream failure on its replica, its client leaving) need not
            # stop the ones waiting on it: they answer themselves.
            pipeline.flights.land(self._key, landing, None)
            raise
        pipeline.flights.land(self._key, landing, answer)
        return answer

    async def aclose(self) -> None:
        """Release the upstream stream; a flight this request led and never finished is handed back, so the
        requests waiting on it answer themselves instead of waiting forever. Idempotent."""
        if self._landing is not None and not self._landing.done():
            self._pipeline.flights.land(self._key, self._landing, None)
        if self._upstream is not None:
            await self._upstream.aclose()
