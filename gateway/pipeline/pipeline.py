"""The one answer pipeline every route uses, plain or streaming:

    prepare -> recall (verified memory, re-checked) -> look up (cache, re-checked) -> generate -> finish: judge,
    candidates when greedy fails, remember, account (and log the answer under its id, for feedback)

A stream is a way of delivering the answer, not a second answer: both paths end in `finish`, and the routes send
only `SqlAnswer.query` of a valid answer, so the text a stream delivers is exactly the plain answer's and nothing
that failed the check ever leaves the gateway.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

from gateway.answer import Generation, SqlAnswer, SqlRequest
from gateway.cache import ResponseCache
from gateway.errors import InvalidRequest, SqlRejected, UpstreamError
from gateway.limits import InputCaps
from gateway.observability.metrics import Metrics
from gateway.observability.tracing import RequestTracer
from gateway.pipeline.candidates import Candidate, Draw
from gateway.pipeline.escalation import Escalation
from gateway.pipeline.fingerprint import ModelFingerprint
from gateway.pipeline.flights import Flights
from gateway.pipeline.kept import AnswerMemory, CachedAnswers, NoMemory, key_settings
from gateway.pipeline.pending import PendingAnswer
from gateway.pipeline.target_step import in_target
from gateway.pipeline.verdict import CHECK_VERSION, CheckOptions, Verdict, judge
from gateway.pipeline.voting import CandidateBudget, VoteStage, candidate_call_fields, check_object
from gateway.prompt import TEMPLATE_VERSION, render_prompt
from gateway.request_record import RequestRecord
from gateway.scope import SameText, SchemaScoper
from gateway.settings import GenerationParams
from gateway.sql_check import SUPPORTED_DIALECTS
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
        memory: AnswerMemory | None = None,
        refusal_ttl_s: int = 300,
    ) -> None:
        self._upstream = upstream
        self._memory = memory or NoMemory()
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
        self._cached = CachedAnswers(
            cache, key_settings=key_settings(TEMPLATE_VERSION, CHECK_VERSION, generation.model_dump(mode="json"),
                                             check.policy.value, check.grounding, candidates.k, candidates.strategy,
                                             candidates.policy, candidates.min_agreement),
            refusal_ttl_s=refusal_ttl_s, check=check, model=upstream_model, metrics=metrics)

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
        verified = await self._memory.recall(request)
        if verified is not None:
            record.cache = "verified"
            return PendingAnswer(self, request, record, "", ready=verified)
        # The model fingerprint is read per request: the readiness watcher names the served folder once vLLM is up.
        key = self._cached.key(self._fingerprint.current, request)
        cached = await self._cached.lookup(request, key, record)
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

    async def remember(self, key: str, answer: SqlAnswer) -> None:
        await self._cached.remember(key, answer)

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
            completion_tokens=generation.completion_tokens,
            check=check_object(verdict, settled, model=self._upstream_model, source="generated",
                               schema_scope=request.schema_scope),
            repair=settled.repair, upstream_latency_s=generation.latency_s, ttft_s=generation.ttft_s,
            extra_tokens=settled.extra_tokens, agreement=settled.agreement,
            answered_by=settled.answered_by or self._upstream_model,
        )

    async def in_target(self, verdict: Verdict, request: SqlRequest) -> Verdict:
        """The configured check database's word on the answer (gateway/pipeline/target_step.py)."""
        return await in_target(verdict, schema=request.schema, dialect=request.dialect, options=self._check)

    def account(self, answer: SqlAnswer, record: RequestRecord, request: SqlRequest) -> None:
        """Tokens, check outcome and trace facts for one answer, once per request; a valid answer is logged under
        the response's id, for the feedback that may name it."""
        outcome = answer.error_code or "valid"
        record.prompt_tokens = answer.usage["prompt_tokens"]
        record.completion_tokens = answer.usage["completion_tokens"]
        record.sql_outcome = outcome
        record.answer = answer
        self._metrics.sql_check(outcome)
        if answer.error_code is not None:
            self._metrics.refusal(answer.error_code)
        if answer.generated:
            self._metrics.add_tokens(record.prompt_tokens, record.completion_tokens)
        if answer.valid and record.answer_id is not None:
            self._memory.keep(record.answer_id, request, answer, record.key_name)

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
