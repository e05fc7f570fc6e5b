"""Langfuse tracing of each request: one trace named after the route, a `generation` observation for the vLLM call
and a `guardrail` observation for the SQL check.

Export runs on the OpenTelemetry batch processor's background thread, so a slow or dead Langfuse costs a request
nothing; every tracer call catches its own failures. Without keys nothing is imported, constructed or started.

Usage along a request (`record` is the request's RequestRecord):

    trace = tracer.start(record, question=q, schema=s)        # also sets record.trace
    trace.start_generation(model=m, parameters=params)        # right before the upstream call
    trace.first_token()                                       # optional, streaming
    trace.end_generation(...) / trace.sql_check(...)          # optional: finish() fills both in from record.answer
    tracer.finish(record, elapsed_s)                          # after the last byte, e.g. in a body's `finally`
"""

from __future__ import annotations

import functools
import logging
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Final, Literal, ParamSpec, Protocol

from gateway.observability.redact import redact_check, redact_sql
from gateway.request_record import RequestRecord

if TYPE_CHECKING:
    from langfuse import Langfuse
    from langfuse._client.span import LangfuseGeneration, LangfuseSpan
    from opentelemetry.sdk.trace import TracerProvider

logger = logging.getLogger("sqlgate.tracing")

REDACTED: Final = "[redacted]"
GENERATION_NAME: Final = "vllm-completion"
GUARDRAIL_NAME: Final = "sql-check"
AGREEMENT_SCORE: Final = "sql_agreement"  # the share of candidate queries that agree with the answer
# Export limits: whole seconds because Langfuse passes them on as ints; bounds each export attempt, retries included.
DEFAULT_EXPORT_TIMEOUT_S: Final = 2
DEFAULT_FLUSH_INTERVAL_S: Final = 1.0
DEFAULT_SHUTDOWN_TIMEOUT_S: Final = 5.0

Level = Literal["DEBUG", "DEFAULT", "WARNING", "ERROR"]
P = ParamSpec("P")


def _never_raises(method: Callable[P, None]) -> Callable[P, None]:
    """Tracing is best effort: a failure inside it is logged and the request goes on untraced."""

    @functools.wraps(method)
    def guarded(*args: P.args, **kwargs: P.kwargs) -> None:
        try:
            method(*args, **kwargs)
        except Exception:
            logger.warning("tracing failed in %s; the request continues untraced", method.__name__, exc_info=True)

    return guarded


def _run_bounded(target: Callable[[], None], timeout_s: float, what: str) -> bool:
    """Runs `target` on a daemon thread and waits at most `timeout_s`; True when it finished in time."""
    failure: list[BaseException] = []

    def run() -> None:
        try:
            target()
        except Exception as exc:
            failure.append(exc)

    worker = threading.Thread(target=run, name=f"sqlgate-tracing-{what}", daemon=True)
    worker.start()
    worker.join(timeout_s)
    if worker.is_alive():
        logger.warning("tracing %s did not finish within %.1f s; unsent traces may be lost", what, timeout_s)
        return False
    if failure:
        logger.warning("tracing %s failed: %r", what, failure[0])
        return False
    return True


class RequestTrace(Protocol):
    """One request's trace. Methods may be called in any order, from any task or thread, and never raise."""

    def start_generation(self, *, model: str, parameters: Mapping[str, Any]) -> None:
        """Opens the generation observation now (call right before the upstream request)."""

    def first_token(self) -> None:
        """Marks the time the first generated text arrived."""

    def end_generation(self, *, output: str | None, prompt_tokens: int | None, completion_tokens: int | None,
                       finish_reason: str | None = None, error: str | None = None) -> None:
        """Ends the generation observation with its output and token usage (or an error code)."""

    def sql_check(self, *, query: str, check: Mapping[str, Any]) -> None:
        """Records the SQL check as a guardrail observation (level WARNING when the SQL was rejected)."""

    def finish(self, record: RequestRecord, elapsed_s: float) -> None:
        """Ends whatever is still open, filling it in from `record`; later calls do nothing."""


class RequestTracer(Protocol):
    """Makes request traces; the app owns one for its lifetime and calls `shutdown()` when it stops."""

    @property
    def enabled(self) -> bool: ...

    def start(self, record: RequestRecord, *, question: str, schema: str) -> RequestTrace:
        """Opens the request's trace and stores it on `record.trace`."""
        ...

    def finish(self, record: RequestRecord, elapsed_s: float) -> None:
        """Finishes `record.trace`, if any."""

    def flush(self, timeout_s: float = DEFAULT_SHUTDOWN_TIMEOUT_S) -> bool:
        """Sends what is queued, waiting at most `timeout_s`; True when everything went out in time."""
        ...

    def shutdown(self) -> None:
        """Flushes (bounded) and stops the background export."""


class NoopTrace:
    def start_generation(self, *, model: str, parameters: Mapping[str, Any]) -> None:
        pass

    def first_token(self) -> None:
        pass

    def end_generation(self, *, output: str | None, prompt_tokens: int | None, completion_tokens: int | None,
                       finish_reason: str | None = None, error: str | None = None) -> None:
        pass

    def sql_check(self, *, query: str, check: Mapping[str, Any]) -> None:
        pass

    def finish(self, record: RequestRecord, elapsed_s: float) -> None:
        pass


class NoopTracer:
    """Used when Langfuse keys are absent: holds no client, thread or exporter."""

    def __init__(self) -> None:
        self._trace = NoopTrace()

    @property
    def enabled(self) -> bool:
        return False

    def start(self, record: RequestRecord, *, question: str, schema: str) -> RequestTrace:
        record.trace = self._trace
        return self._trace

    def finish(self, record: RequestRecord, elapsed_s: float) -> None:
        pass

    def flush(self, timeout_s: float = DEFAULT_SHUTDOWN_TIMEOUT_S) -> bool:
        return True

    def shutdown(self) -> None:
        pass


def _model_parameters(parameters: Mapping[str, Any]) -> dict[str, str | int | float | bool | list[str] | None]:
    """Langfuse accepts scalars and string lists as model parameters; anything else goes in as text."""
    out: dict[str, str | int | float | bool | list[str] | None] = {}
    for name, value in parameters.items():
        if value is None or isinstance(value, str | int | float | bool):
            out[name] = value
        elif isinstance(value, list | tuple) and all(isinstance(v, str) for v in value):
            out[name] = list(value)
        else:
            out[name] = str(value)
    return out


def _check_rejected(check: Mapping[str, Any]) -> str | None:
    """The check's error code when it rejected the SQL, else None."""
    code = check.get("error_code")
    if code:
        return str(code)
    return None if check.get("valid", False) else "invalid_sql"


class LangfuseTrace:
    """A request's observations, opened and ended by hand so that a streamed body can end them in another task."""

    def __init__(self, client: Langfuse, record: RequestRecord, *, question: str, schema: str,
                 redact_question: bool) -> None:
        self._client = client
        self._user_id = record.key_name
        self._trace_name = record.route
        self._request_id = record.request_id
        self._input = {"question": REDACTED if redact_question else question, "schema": schema}
        self._redact = redact_question  # then the question's values inside the SQL go too
        self._lock = threading.Lock()  # finish() may race end_generation() from a body generator's finally
        self._generation: LangfuseGeneration | None = None
        self._generation_started_ns = 0
        self._completion_start: datetime | None = None
        self._generation_ended = False
        self._checked = False
        self._finished = False
        with self._propagated():
            self._root: LangfuseSpan = client.start_observation(
                name=record.route, as_type="span", input=self._input,
                metadata={"request_id": record.request_id, "method": record.method},
            )

    @contextmanager
    def _propagated(self) -> Iterator[None]:
        """Trace-level attributes (trace name, user = API key name, request id) on every observation."""
        from langfuse import propagate_attributes

        with propagate_attributes(user_id=self._user_id, trace_name=self._trace_name,
                                  metadata={"request_id": self._request_id}):
            yield

    @_never_raises
    def start_generation(self, *, model: str, parameters: Mapping[str, Any]) -> None:
        with self._lock:
            if self._generation is not None or self._finished:
                return
            with self._propagated():
                self._generation = self._root.start_observation(
                    name=GENERATION_NAME, as_type="generation", model=model,
                    model_parameters=_model_parameters(parameters), input=self._input,
                )
            self._generation_started_ns = time.time_ns()

    @_never_raises
    def first_token(self) -> None:
        with self._lock:
            if self._completion_start is None:
                self._completion_start = datetime.now(UTC)

    @_never_raises
    def end_generation(self, *, output: str | None, prompt_tokens: int | None, completion_tokens: int | None,
                       finish_reason: str | None = None, error: str | None = None) -> None:
        with self._lock:
            self._end_generation(output=output, prompt_tokens=prompt_tokens, completion_tokens=completion_tokens,
                                 finish_reason=finish_reason, error=error, latency_s=None, ttft_s=None)

    def _end_generation(self, *, output: str | None, prompt_tokens: int | None, completion_tokens: int | None,
                        finish_reason: str | None, error: str | None, latency_s: float | None,
                        ttft_s: float | None) -> None:
        generation = self._generation
        if generation is None or self._generation_ended:
            return
        self._generation_ended = True
        if self._completion_start is None and ttft_s is not None:
            self._completion_start = datetime.fromtimestamp(self._generation_started_ns / 1e9 + ttft_s, UTC)
        metadata: dict[str, Any] = {"finish_reason": finish_reason}
        if latency_s is not None:
            metadata["latency_ms"] = round(latency_s * 1000, 1)
        if self._completion_start is not None:
            started = datetime.fromtimestamp(self._generation_started_ns / 1e9, UTC)
            metadata["ttft_ms"] = round((self._completion_start - started).total_seconds() * 1000, 1)
        usage: dict[str, int] | None = None
        if prompt_tokens is not None or completion_tokens is not None:
            usage = {"input": prompt_tokens or 0, "output": completion_tokens or 0,
                     "total": (prompt_tokens or 0) + (completion_tokens or 0)}
        generation.update(
            output=output, usage_details=usage, completion_start_time=self._completion_start, metadata=metadata,
            level="ERROR" if error else None, status_message=error,
        )
        # The upstream call's own end, not the later moment the response body finished.
        end_ns = None
        if latency_s is not None:
            end_ns = min(self._generation_started_ns + int(latency_s * 1e9), time.time_ns())
        generation.end(end_time=end_ns)

    def _sql(self, query: str) -> str:
        return redact_sql(query) if self._redact else query

    @_never_raises
    def sql_check(self, *, query: str, check: Mapping[str, Any]) -> None:
        with self._lock:
            self._sql_check(query, check, cached=False)

    def _sql_check(self, query: str, check: Mapping[str, Any], *, cached: bool) -> None:
        if self._checked or self._finished:
            return
        self._checked = True
        rejected = _check_rejected(check)
        with self._propagated():
            guardrail = self._root.start_observation(
                name=GUARDRAIL_NAME, as_type="guardrail", input={"sql": self._sql(query)},
                output=redact_check(check) if self._redact else dict(check),
                metadata={"cached": cached}, level="WARNING" if rejected else None, status_message=rejected,
            )
        guardrail.end()

    @_never_raises
    def finish(self, record: RequestRecord, elapsed_s: float) -> None:
        with self._lock:
            if self._finished:
                return
            answer = record.answer
            status = record.stream_error_status or record.status
            if answer is not None and not answer.cached:
                self._end_generation(
                    output=self._sql(answer.query), prompt_tokens=answer.prompt_tokens,
                    completion_tokens=answer.completion_tokens, finish_reason=answer.finish_reason,
                    error=None, latency_s=answer.upstream_latency_s, ttft_s=answer.ttft_s,
                )
            else:  # no answer from vLLM: the call failed or the client went away
                self._end_generation(output=None, prompt_tokens=None, completion_tokens=None, finish_reason=None,
                                     error=record.error_code or "no_answer", latency_s=None, ttft_s=None)
            if answer is not None:
                self._sql_check(answer.query, answer.check, cached=answer.cached)
                if answer.agreement is not None and not answer.cached:
                    # Confidence as a Langfuse score on the trace: filterable, chartable next to user feedback.
                    self._root.score_trace(name=AGREEMENT_SCORE, value=float(answer.agreement["ratio"]),
                                           data_type="NUMERIC",
                                           comment=f"{answer.agreement['agreeing']} of "
                                                   f"{answer.agreement['candidates']} candidate queries agree")
            self._finished = True
            level: Level | None = "ERROR" if status >= 500 or status == 0 else "WARNING" if status >= 400 else None
            self._root.update(
                output=self._sql(answer.query) if answer is not None else None,
                metadata={"status": status, "latency_ms": round(elapsed_s * 1000, 1), "cache": record.cache,
                          "sql_outcome": record.sql_outcome, "error_code": record.error_code,
                          "repair": answer.repair.as_dict() if answer is not None and answer.repair else None,
                          "agreement": answer.agreement if answer is not None else None,
                          "answered_by": answer.answered_by if answer is not None else None},
                level=level, status_message=record.error_code,
            )
            self._root.end()


class LangfuseTracer:
    """Traces to Langfuse through its SDK, on a TracerProvider of its own (nothing is installed globally)."""

    def __init__(self, *, public_key: str, secret_key: str, base_url: str | None, redact_question: bool,
                 environment: str | None = None, release: str | None = None,
                 export_timeout_s: int = DEFAULT_EXPORT_TIMEOUT_S,
                 flush_interval_s: float = DEFAULT_FLUSH_INTERVAL_S,
                 shutdown_timeout_s: float = DEFAULT_SHUTDOWN_TIMEOUT_S) -> None:
        from langfuse import Langfuse
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider

        self._redact_question = redact_question
        self._shutdown_timeout_s = shutdown_timeout_s
        self._public_key = public_key
        # shutdown_on_exit=False: this object ends the provider in shutdown(); Langfuse's own atexit hook still
        # flushes if the app never got that far.
        self._provider: TracerProvider = TracerProvider(
            resource=Resource.create({"service.name": "sqlgate"}), shutdown_on_exit=False,
        )
        registry = _resource_registry()
        with registry.lock:
            # Langfuse keeps one resource bundle (exporter, threads) per public key for the whole process and
            # would hand a second app with the same key the first one's exporter, even after it was shut down.
            # Each tracer takes the slot for itself; an older client keeps the bundle it already holds.
            registry.instances.pop(public_key, None)
            self._client: Langfuse = Langfuse(
                public_key=public_key, secret_key=secret_key, base_url=base_url,
                timeout=max(1, export_timeout_s), flush_interval=flush_interval_s,
                environment=environment, release=release, tracer_provider=self._provider,
            )
            self._resources = registry.instances.get(public_key)
        self._closed = False

    @property
    def enabled(self) -> bool:
        return True

    def start(self, record: RequestRecord, *, question: str, schema: str) -> RequestTrace:
        trace: RequestTrace
        try:
            trace = LangfuseTrace(self._client, record, question=question, schema=schema,
                                  redact_question=self._redact_question)
        except Exception:
            logger.warning("could not start a trace; the request continues untraced", exc_info=True)
            trace = NoopTrace()
        record.trace = trace
        return trace

    @_never_raises
    def finish(self, record: RequestRecord, elapsed_s: float) -> None:
        trace = record.trace
        if trace is not None and hasattr(trace, "finish"):
            trace.finish(record, elapsed_s)

    def flush(self, timeout_s: float = DEFAULT_SHUTDOWN_TIMEOUT_S) -> bool:
        if self._closed:
            return True
        return _run_bounded(self._client.flush, timeout_s, "flush")

    def shutdown(self) -> None:
        if self._closed:
            return
        self._closed = True

        def stop() -> None:
            self._client.shutdown()  # flushes spans, stops Langfuse's score and media threads
            self._provider.shutdown()  # stops the batch processor's thread, which Langfuse leaves running
            # Langfuse's shutdown also leaves its prompt-cache refresh thread running (unused here).
            task_manager = getattr(getattr(self._resources, "prompt_cache", None), "_task_manager", None)
            if task_manager is not None:
                task_manager.shutdown()
            # ... and its API client (scores go through it) open, with a kept-alive socket to the server.
            api_client = getattr(self._resources, "httpx_client", None)
            if api_client is not None:
                api_client.close()

        _run_bounded(stop, self._shutdown_timeout_s, "shutdown")
        registry = _resource_registry()
        with registry.lock:
            if self._resources is not None and registry.instances.get(self._public_key) is self._resources:
                registry.instances.pop(self._public_key, None)


class _Registry:
    """Langfuse's per-public-key registry of resource bundles; it has no public accessor."""

    def __init__(self, lock: Any, instances: dict[str, Any]) -> None:
        self.lock = lock
        self.instances = instances


def _resource_registry() -> _Registry:
    try:
        from langfuse._client.resource_manager import LangfuseResourceManager

        return _Registry(LangfuseResourceManager._lock, LangfuseResourceManager._instances)
    except (ImportError, AttributeError):  # a future SDK without it: fall back to the SDK's own behaviour
        return _Registry(threading.RLock(), {})


def build_tracer(public_key: str | None, secret_key: str | None, base_url: str | None, redact_question: bool, *,
                 environment: str | None = None, release: str | None = None,
                 export_timeout_s: int = DEFAULT_EXPORT_TIMEOUT_S,
                 flush_interval_s: float = DEFAULT_FLUSH_INTERVAL_S,
                 shutdown_timeout_s: float = DEFAULT_SHUTDOWN_TIMEOUT_S) -> RequestTracer:
    """A Langfuse tracer when both keys are set, else a no-op one (no import, client, thread or exporter)."""
    if not public_key or not secret_key:
        if public_key or secret_key:
            logger.warning("Langfuse tracing is off: set both SQLGATE_LANGFUSE_PUBLIC_KEY and "
                           "SQLGATE_LANGFUSE_SECRET_KEY")
        return NoopTracer()
    try:
        return LangfuseTracer(public_key=public_key, secret_key=secret_key, base_url=base_url,
                              redact_question=redact_question, environment=environment, release=release,
                              export_timeout_s=export_timeout_s, flush_interval_s=flush_interval_s,
                              shutdown_timeout_s=shutdown_timeout_s)
    except Exception:
        logger.warning("Langfuse tracing could not start; continuing without it", exc_info=True)
        return NoopTracer()
