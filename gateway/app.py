"""The app factory. The lifespan owns every long-lived resource and releases it in `finally`."""

from __future__ import annotations

import asyncio
import gc
import logging
import logging.config
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles
from pydantic import SecretStr
from redis.asyncio import Redis
from starlette.routing import Route

from gateway.agents import MCP_PATH, McpEndpoint, build_mcp_server
from gateway.auth import KeyRing
from gateway.cache import MemoryCache, RedisCache
from gateway.drain import Drain
from gateway.errors import install_exception_handlers
from gateway.limits import (
    InProcessRateLimiter,
    InputCaps,
    RedisRateLimiter,
    load_tokenizer,
)
from gateway.memory.answer_log import AnswerLog
from gateway.memory.feedback import FeedbackDesk
from gateway.memory.recall import VerifiedMemory
from gateway.middleware import GatewayMiddleware
from gateway.observability.metrics import Metrics
from gateway.observability.request_log import logging_config
from gateway.observability.tracing import build_tracer
from gateway.pipeline import AnswerPipeline, CandidateBudget, CheckOptions
from gateway.pipeline.escalation import Escalation
from gateway.pipeline.fingerprint import ModelFingerprint
from gateway.pipeline.voting import candidate_call_fields
from gateway.readiness import Readiness, watch_readiness, watch_replicas
from gateway.routes import feedback, health, openai, responses, sql, web
from gateway.scope import SchemaScoper
from gateway.settings import Settings
from gateway.sleep_gate import Clock, SleepGate, utc_now
from gateway.sql_check import SqlPolicy, check_sql
from gateway.sql_check.target import TargetEngines
from gateway.state import AppState
from gateway.store import StoreError, open_store
from gateway.upstream import Sleep, UpstreamClient, UpstreamLimits

logger = logging.getLogger("sqlgate")

def configure_logging(level: str) -> None:
    """JSON lines on stderr, unless the host process (a test runner, a custom server) set up logging already."""
    if not logging.getLogger().handlers:
        logging.config.dictConfig(logging_config(level.upper()))
    # sqlglot warns when it falls back to a generic command; the SQL check reports that itself.
    logging.getLogger("sqlglot").setLevel(logging.ERROR)
    # The MCP SDK logs every stateless message at INFO ("Terminating session: None"); the request line says it all.
    logging.getLogger("mcp").setLevel(logging.WARNING)


def freeze_startup_heap(dialect: str) -> None:
    """Move everything start-up built out of the garbage collector's sight, after warming the SQL check.

    Once imported and loaded, the gateway holds ~120k long-lived objects; every full collection walked all of them
    (60 ms on the benchmark host), which showed up as the gateway's worst latencies. Frozen, they are never
    scanned, and a full pass sees only what requests allocate. The SQL check runs once first so that sqlglot's
    lazily built dialect tables are part of the frozen heap, not of the first request."""
    check_sql("SELECT 1", schema=None, dialect=dialect)
    gc.collect()
    gc.freeze()


def create_app(
    settings: Settings | None = None,
    *,
    retry_sleep: Sleep = asyncio.sleep,
    upstream_class: type[UpstreamClient] = UpstreamClient,
    clock: Clock = utc_now,
) -> FastAPI:
    """Build the gateway. `retry_sleep` is a seam for fault-injection tests, `upstream_class` for the serving
    benchmarks (benchmarks/bench_gateway.py), `clock` for business-hours tests."""
    settings = settings or Settings()
    configure_logging(settings.log_level)
    metrics = Metrics()
    state = AppState(settings=settings, metrics=metrics,
                     keyring=KeyRing(settings.api_key_entries(), enabled=settings.auth_enabled),
                     drain=Drain(settings.shutdown_grace_s))
    # Loaded before serving so that a bad tokenizer path stops start-up, not the first request.
    tokenizer = load_tokenizer(settings.tokenizer)
    generation = settings.generation()
    business_hours = settings.business_schedule()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        redis = Redis.from_url(settings.redis_url.get_secret_value()) if settings.redis_url else None
        limits = UpstreamLimits(
            connect_timeout_s=settings.upstream_connect_timeout_s,
            read_timeout_s=settings.upstream_read_timeout_s,
            pool_size=settings.upstream_pool_size,
            retry_attempts=settings.upstream_retry_attempts,
            retry_budget_s=settings.upstream_retry_budget_s,
        )

        def upstream_for(url: str, key: SecretStr | None) -> UpstreamClient:
            return upstream_class(url, limits, api_key=key.get_secret_value() if key else None, sleep=retry_sleep,
                                  on_retry=metrics.retry)

        upstream = upstream_for(settings.upstream_url, settings.upstream_api_key)
        # The second model, asked only below the agreement threshold (gateway/pipeline/escalation.py).
        escalation_upstream = (upstream_for(settings.escalation_url, settings.escalation_api_key)
                               if settings.escalation_url else None)
        state.tracer = build_tracer(
            public_key=settings.langfuse_public_key,
            secret_key=settings.langfuse_secret_key.get_secret_value() if settings.langfuse_secret_key else None,
            base_url=settings.langfuse_base_url,
            redact_question=settings.trace_redact_question,
        )
        engines = TargetEngines(
            postgres_url=settings.check_postgres_url.get_secret_value() if settings.check_postgres_url else None,
            mysql_url=settings.check_mysql_url.get_secret_value() if settings.check_mysql_url else None,
            timeout_s=settings.check_timeout_s, pool_size=settings.check_pool_size)
        store = open_store(settings.database())
        answers = AnswerLog(store, retention_days=settings.answer_retention_days)
        check = CheckOptions(policy=SqlPolicy(settings.sql_policy), grounding=settings.sql_grounding,
                             unverified=settings.sql_unverified, expensive=settings.sql_expensive,
                             engines=engines)
        try:
            # A store that can't be opened or migrated stops start-up: feedback would otherwise be lost silently.
            try:
                await store.start()
            except StoreError as exc:
                logger.error("sqlgate cannot start: the store (SQLGATE_DATABASE_URL) failed: %s", exc)
                raise
            answers.start()
            state.store = store
            state.feedback = FeedbackDesk(store, answers, check=check, metrics=metrics, tracer=state.tracer,
                                          redact_comments=settings.trace_redact_question)
            state.upstream = upstream
            if settings.rate_limit_per_minute > 0:
                state.limiter = (RedisRateLimiter(redis, settings.rate_limit_per_minute) if redis is not None
                                 else InProcessRateLimiter(settings.rate_limit_per_minute))
            if settings.cache_enabled:
                state.cache = (RedisCache(redis, settings.cache_ttl_seconds) if redis is not None
                               else MemoryCache(settings.cache_max_entries, settings.cache_ttl_seconds))
            state.readiness = Readiness(upstream, settings.upstream_model, settings.ready_timeout_s,
                                        settings.ready_cache_s, metrics)
            metrics.watch_replicas(upstream.replicas.snapshot)
            readiness = state.readiness
            state.gate = SleepGate(business_hours, clock=clock, upstream_ready=lambda: readiness.last,
                                   wake_file=settings.wake_file if settings.wake_on_request else None,
                                   cold_start_s=settings.wake_cold_start_s)
            metrics.watch_schedule(state.gate.in_hours, state.gate.asleep)
            fingerprint = ModelFingerprint(upstream, settings.upstream_model)
            state.pipeline = AnswerPipeline(
                upstream=upstream,
                cache=state.cache,
                caps=InputCaps(
                    max_question_chars=settings.max_question_chars,
                    max_schema_chars=settings.max_schema_chars,
                    max_model_len=settings.max_model_len,
                    max_new_tokens=generation.max_tokens,
                    tokenizer=tokenizer,
                ),
                generation=generation,
                candidates=CandidateBudget(k=settings.sql_candidates, budget_s=settings.sql_candidate_budget_s,
                                           strategy=settings.sql_candidate_strategy,
                                           policy=settings.sql_candidates_policy,
                                           min_agreement=settings.sql_min_agreement),
                upstream_model=settings.upstream_model,
                check=check,
                default_dialect=settings.sql_dialect,
                metrics=metrics,
                tracer=state.tracer,
                fingerprint=fingerprint,
                scoper=SchemaScoper(tokenizer, min(settings.prompt_budget_tokens,
                                                   settings.max_model_len - generation.max_tokens)),
                escalation=Escalation(
                    escalation_upstream, str(settings.escalation_model),
                    greedy_fields=generation.as_upstream_fields(),
                    candidate_fields=candidate_call_fields(generation, settings.sql_candidates),
                    k=settings.sql_candidates, budget_s=settings.sql_candidate_budget_s,
                ) if escalation_upstream is not None else None,
                memory=VerifiedMemory(store, answers, check=check, metrics=metrics, enabled=settings.memory_enabled),
                refusal_ttl_s=settings.cache_refusal_ttl_seconds,
            )
            state.mcp = build_mcp_server(state).session_manager
            freeze_startup_heap(settings.sql_dialect)
            logger.info("sqlgate ready to serve: upstream %s model %s cache %s store %s", settings.upstream_url,
                        settings.upstream_model, state.cache.name, store.name)
            watcher = (asyncio.create_task(watch_readiness(state.readiness, settings.ready_interval_s,
                                                                 on_ready=fingerprint.refresh))
                       if settings.ready_interval_s > 0 else None)
            # A single replica is always routed to, marked down or not: probing it back would change nothing.
            prober = (asyncio.create_task(watch_replicas(state.readiness, settings.upstream_probe_back_s))
                      if len(upstream.replicas) > 1 else None)
            try:
                with state.drain.on_shutdown_signals(asyncio.get_running_loop()):
                    async with state.mcp.run():
                        yield
            finally:
                for task in (watcher, prober):
                    if task is not None:
                        task.cancel()
        finally:
            gc.unfreeze()
            state.drain.close()
            await answers.aclose()  # what is still queued is written before the store closes
            await store.aclose()
            await upstream.aclose()
            if escalation_upstream is not None:
                await escalation_upstream.aclose()
            await state.cache.aclose()
            await state.limiter.aclose()
            if redis is not None:
                await redis.aclose()
            state.tracer.shutdown()
            engines.close()

    app = FastAPI(
        title="sqlgate",
        summary="OpenAI-compatible text-to-SQL gateway",
        version="0.1.0",
        lifespan=lifespan,
        # The gateway measures, traces and logs every request itself; FastAPI's own OpenTelemetry instrumentation
        # would add a second span per request to whatever global provider a library set up, and costs each request
        # a provider lookup even when none is.
        telemetry={"tracing": False, "metrics": False, "logs": False},
        # Who may read them (a key, anyone) is decided by the middleware; `off` does not serve them at all.
        docs_url=None if settings.docs_access == "off" else "/docs",
        redoc_url=None if settings.docs_access == "off" else "/redoc",
        openapi_url=None if settings.docs_access == "off" else "/openapi.json",
    )
    app.state.sqlgate = state
    install_exception_handlers(app)
    app.include_router(openai.router)
    app.include_router(responses.router)
    app.include_router(sql.router)
    app.include_router(feedback.router)
    app.include_router(health.router)
    app.include_router(web.router)
    # An ASGI route, not a mount: `POST /mcp` is answered as it is, without a redirect to `/mcp/`. POST only: a
    # stateless server has nothing to push on a GET stream (which would stay open forever), so GET is 405.
    app.router.routes.append(Route(MCP_PATH, McpEndpoint(lambda: state), methods=["POST"], include_in_schema=False))
    app.mount("/web", StaticFiles(directory=web.WEB_DIR), name="static")
    app.add_middleware(GatewayMiddleware, state_getter=lambda: state)
    return app
