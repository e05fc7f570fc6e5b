"""The gateway's Prometheus metrics (names in docs/contract.md), on a registry owned by each app instance.

Labels only ever carry bounded values (route names, HTTP codes, fixed outcome words): never keys or question text.
"""

from __future__ import annotations

import math
import re
import threading
from collections.abc import Callable, Iterable, Sequence

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4, generate_latest
from prometheus_client.registry import Collector

from gateway.replicas import ReplicaSnapshot

# Seconds. 0.5 and 0.8 resolve the p50 target and alert, 2 and 3 the p99 target and alert (docs/contract.md).
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 0.8, 1.0, 1.5, 2.0, 3.0, 5.0, 10.0, 20.0, 30.0)
# Tokens per answer; 200 is the runaway-generation alert, 256 the output cap.
COMPLETION_TOKEN_BUCKETS = (8, 16, 32, 64, 128, 200, 256, 384, 512)

UPSTREAM_OUTCOMES = ("ok", "error")
CACHE_RESULTS = ("hit", "miss")
SQL_OUTCOMES = ("valid", "unsafe_sql", "invalid_sql", "ungrounded_sql", "truncated_sql", "unanswerable_sql",
                "untranslatable_sql", "low_confidence", "unverifiable_sql", "expensive_sql")
# Share of the candidate queries that agree with the answer; 0.75 is the "confident" line docs/eval.md reports.
VOTE_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5)
AGREEMENT_BUCKETS = (0.125, 0.25, 0.375, 0.5, 0.625, 0.75, 0.875, 1.0)
# What the candidate step can end in: a passing candidate replaced the greedy answer, or none did.
REPAIR_OUTCOMES = ("won", "lost")
REJECT_REASONS = ("auth", "rate_limit", "cap", "body_too_large", "validation", "asleep")
OTHER = "other"  # any value outside a fixed set, so a caller's typo can't grow the series count
# Error codes are the gateway's own words (docs/contract.md's error table); anything else is not one.
_ERROR_CODE = re.compile(r"^[a-z][a-z0-9_]{0,47}$")


def _bounded(value: str, allowed: tuple[str, ...]) -> str:
    return value if value in allowed else OTHER


class _TokenTotals(Collector):
    """`sqlgate_prompt_tokens_total` and `sqlgate_completion_tokens_total`, without `_created` samples.

    A plain `Counter("sqlgate_completion_tokens")` can't share a registry with the histogram of the same base name
    (both claim `sqlgate_completion_tokens` and `..._created`), so these two totals are collected by hand.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._prompt = 0
        self._completion = 0

    def add(self, prompt: int, completion: int) -> None:
        with self._lock:
            self._prompt += max(prompt, 0)
            self._completion += max(completion, 0)

    def describe(self) -> Iterable[Metric]:
        return []  # nothing to reserve: the names can't clash with the histogram's in the text format

    def collect(self) -> Iterable[Metric]:
        with self._lock:
            prompt, completion = self._prompt, self._completion
        yield CounterMetricFamily("sqlgate_prompt_tokens", "Prompt tokens sent to the model.", value=prompt)
        yield CounterMetricFamily("sqlgate_completion_tokens", "Completion tokens the model generated.",
                                  value=completion)


class _ReplicaSeries(Collector):
    """`sqlgate_upstream_replica_*{replica="r0"}`: read from the replica set at scrape time, never copied.

    The label is the replica's position in SQLGATE_UPSTREAM_URL (bounded by the setting, and no URL leaks)."""

    def __init__(self, snapshot: Callable[[], Sequence[ReplicaSnapshot]]) -> None:
        self._snapshot = snapshot

    def describe(self) -> Iterable[Metric]:
        return []

    def collect(self) -> Iterable[Metric]:
        replicas = self._snapshot()
        in_flight = GaugeMetricFamily("sqlgate_upstream_replica_in_flight",
                                      "Upstream attempts in flight on each vLLM replica.", labels=["replica"])
        up = GaugeMetricFamily("sqlgate_upstream_replica_up",
                               "1 while a replica is routed to, 0 while it is marked down after a failure.",
                               labels=["replica"])
        ready = GaugeMetricFamily("sqlgate_upstream_replica_ready",
                                  "1 when the replica's last probe generated, 0 when not, NaN before the first.",
                                  labels=["replica"])
        attempts = CounterMetricFamily("sqlgate_upstream_replica_attempts",
                                       "Upstream attempts sent to each replica (retries included).",
                                       labels=["replica"])
        failures = CounterMetricFamily("sqlgate_upstream_replica_failures",
                                       "Times a replica was marked down (refused or lost a connection, failed a "
                                       "probe).", labels=["replica"])
        for replica in replicas:
            label = [replica.name]
            in_flight.add_metric(label, replica.in_flight)
            up.add_metric(label, 1 if replica.up else 0)
            ready.add_metric(label, math.nan if replica.ready is None else float(replica.ready))
            attempts.add_metric(label, replica.attempts)
            failures.add_metric(label, replica.failures)
        yield from (in_flight, up, ready, attempts, failures)


class Metrics:
    """Every gateway metric, registered on this instance's own registry (apps in one process never clash)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self._requests = Counter("sqlgate_requests", "Requests answered, by route and HTTP status.",
                                 ["route", "status"], registry=r)
        self._duration = Histogram("sqlgate_request_duration_seconds",
                                   "Time from request start to the last byte sent, by route.",
                                   ["route"], buckets=LATENCY_BUCKETS, registry=r)
        self._upstream = Histogram("sqlgate_upstream_request_duration_seconds",
                                   "Time spent in one vLLM call, retries included, by outcome.",
                                   ["outcome"], buckets=LATENCY_BUCKETS, registry=r)
        self._ttft = Histogram("sqlgate_time_to_first_token_seconds",
                               "Time from the upstream call to the first generated text, by route.",
                               ["route"], buckets=LATENCY_BUCKETS, registry=r)
        self._tokens = _TokenTotals()
        r.register(self._tokens)
        self._completion_tokens = Histogram("sqlgate_completion_tokens", "Completion tokens per generated answer.",
                                            buckets=COMPLETION_TOKEN_BUCKETS, registry=r)
        self._cache = Counter("sqlgate_cache_requests", "Response cache lookups, by result.", ["result"],
                              registry=r)
        self._sql_checks = Counter("sqlgate_sql_checks", "SQL checks of generated answers, by outcome.",
                                   ["outcome"], registry=r)
        self._compile_failures = Counter("sqlgate_sql_compile_failures",
                                         "Model answers that did not compile against the request's schema.",
                                         registry=r)
        self._repairs = Counter("sqlgate_sql_repairs", "Candidate steps run after a failed greedy answer.",
                                ["outcome"], registry=r)
        self._repair_duration = Histogram("sqlgate_sql_repair_duration_seconds",
                                          "Time the candidate step took (its one sampling call and the checks).",
                                          buckets=LATENCY_BUCKETS, registry=r)
        self._agreement = Histogram("sqlgate_sql_agreement_ratio",
                                    "Share of the candidate queries that agree with the answer, per vote.",
                                    buckets=AGREEMENT_BUCKETS, registry=r)
        self._vote = Histogram("sqlgate_sql_vote_duration_seconds",
                               "The vote's own time: synthesizing databases and running every candidate on them.",
                               buckets=VOTE_BUCKETS, registry=r)
        self._refusals = Counter("sqlgate_sql_refusals", "Answers refused after the model ran, by error code.",
                                 ["code"], registry=r)
        self._rejected = Counter("sqlgate_rejected_requests", "Requests refused before the model, by reason.",
                                 ["reason"], registry=r)
        self._errors = Counter("sqlgate_errors", "Requests answered with an error, by route and error code (an "
                               "in-band stream error or an MCP tool error included).", ["route", "code"],
                               registry=r)
        self._in_flight = Gauge("sqlgate_requests_in_flight", "Requests being handled now.", registry=r)
        self._retries = Counter("sqlgate_upstream_retries", "Upstream calls retried before the first byte.",
                                registry=r)
        self._ready = Gauge("sqlgate_upstream_ready",
                            "1 when the last readiness probe generated, 0 when it did not, NaN before the first.",
                            registry=r)
        # NaN, not 0, before any probe: "unknown" must not page as "upstream not ready" at start-up.
        self._ready.set(math.nan)
        # Read at scrape time from the business-hours gate, so they are true whenever Prometheus looks.
        self._in_hours = Gauge("sqlgate_schedule_open",
                               "1 inside SQLGATE_BUSINESS_HOURS (or when none are set), 0 outside.", registry=r)
        self._asleep = Gauge("sqlgate_model_asleep",
                             "1 when outside business hours with vLLM not generating (requests get 503 model_asleep).",
                             registry=r)
        self._in_hours.set(1)
        self._asleep.set(0)
        # Series that exist from the start, so rate() and the alert ratios see zeros instead of nothing.
        for outcome in UPSTREAM_OUTCOMES:
            self._upstream.labels(outcome)
        for result in CACHE_RESULTS:
            self._cache.labels(result)
        for sql_outcome in SQL_OUTCOMES:
            self._sql_checks.labels(sql_outcome)
        for reason in REJECT_REASONS:
            self._rejected.labels(reason)
        for repair in REPAIR_OUTCOMES:
            self._repairs.labels(repair)
        for code in SQL_OUTCOMES[1:]:
            self._refusals.labels(code)
        self._replica_series: _ReplicaSeries | None = None

    def watch_replicas(self, snapshot: Callable[[], Sequence[ReplicaSnapshot]]) -> None:
        """Expose the upstream's replicas (called by each lifespan start; a restart replaces the last set)."""
        if self._replica_series is not None:
            self.registry.unregister(self._replica_series)
        self._replica_series = _ReplicaSeries(snapshot)
        self.registry.register(self._replica_series)

    def observe_request(self, route: str, status: int, seconds: float) -> None:
        """One finished request: its count by status and its duration."""
        self._requests.labels(route, str(status)).inc()
        self._duration.labels(route).observe(seconds)

    def observe_upstream(self, outcome: str, seconds: float) -> None:
        self._upstream.labels(_bounded(outcome, UPSTREAM_OUTCOMES)).observe(seconds)

    def observe_ttft(self, route: str, seconds: float) -> None:
        self._ttft.labels(route).observe(seconds)

    def add_tokens(self, prompt: int, completion: int) -> None:
        """Tokens of one generated (not cached) answer."""
        self._tokens.add(prompt, completion)
        self._completion_tokens.observe(max(completion, 0))

    def cache(self, hit: bool) -> None:
        self._cache.labels("hit" if hit else "miss").inc()

    def sql_check(self, outcome: str) -> None:
        self._sql_checks.labels(_bounded(outcome, SQL_OUTCOMES)).inc()

    def compile_failure(self) -> None:
        self._compile_failures.inc()

    def repair(self, won: bool, seconds: float) -> None:
        self._repairs.labels("won" if won else "lost").inc()
        self._repair_duration.observe(seconds)

    def vote(self, seconds: float) -> None:
        self._vote.observe(seconds)

    def agreement(self, ratio: float) -> None:
        self._agreement.observe(ratio)

    def refusal(self, code: str) -> None:
        self._refusals.labels(_bounded(code, SQL_OUTCOMES)).inc()

    def rejected(self, reason: str) -> None:
        self._rejected.labels(_bounded(reason, REJECT_REASONS)).inc()

    def error(self, route: str, code: str) -> None:
        """One request that ended in an error with `code` (the `error.code` its client got)."""
        self._errors.labels(route, code if _ERROR_CODE.match(code) else OTHER).inc()

    def retry(self) -> None:
        self._retries.inc()

    def set_ready(self, ready: bool) -> None:
        self._ready.set(1 if ready else 0)

    def watch_schedule(self, in_hours: Callable[[], bool], asleep: Callable[[], bool]) -> None:
        """Make the business-hours gauges report the gate's verdicts at each scrape."""
        self._in_hours.set_function(lambda: float(in_hours()))
        self._asleep.set_function(lambda: float(asleep()))

    def in_flight_inc(self) -> None:
        self._in_flight.inc()

    def in_flight_dec(self) -> None:
        self._in_flight.dec()

    def render(self) -> tuple[bytes, str]:
        """The exposition body and its content type (classic text format 0.0.4, which every Prometheus reads)."""
        return generate_latest(self.registry), CONTENT_TYPE_PLAIN_0_0_4
