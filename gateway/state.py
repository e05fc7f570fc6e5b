"""What the lifespan owns, in one object the routes and the middleware reach through `gateway.deps`. A module of
its own (not app.py) so that deps, middleware and routes can import the type without importing the factory."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from mcp.server.streamable_http_manager import StreamableHTTPSessionManager

from gateway.auth import KeyRing
from gateway.cache import NoCache, ResponseCache
from gateway.drain import Drain
from gateway.limits import RateLimiter, UnlimitedRate
from gateway.observability.metrics import Metrics
from gateway.observability.request_log import RequestLogger
from gateway.observability.tracing import RequestTracer
from gateway.pipeline import AnswerPipeline
from gateway.readiness import Readiness
from gateway.request_record import RequestRecord
from gateway.settings import Settings
from gateway.sleep_gate import SleepGate
from gateway.upstream import UpstreamClient


@dataclass
class AppState:
    settings: Settings
    metrics: Metrics
    keyring: KeyRing
    drain: Drain
    limiter: RateLimiter = field(default_factory=UnlimitedRate)
    pipeline: AnswerPipeline = field(init=False)
    upstream: UpstreamClient = field(init=False)
    cache: ResponseCache = field(default_factory=NoCache)
    readiness: Readiness = field(init=False)
    gate: SleepGate = field(init=False)
    tracer: RequestTracer = field(init=False)
    mcp: StreamableHTTPSessionManager = field(init=False)  # serves /mcp (gateway/agents)
    request_log: RequestLogger = field(default_factory=RequestLogger)
    started_at: int = field(default_factory=lambda: int(time.time()))

    def finish_request(self, record: RequestRecord, elapsed_s: float, *, log: bool) -> None:
        """Called once per request after its last byte: the log line and the trace's end."""
        if record.trace is not None:
            self.tracer.finish(record, elapsed_s)
        if log:
            self.request_log.emit(record, elapsed_s)
