"""A bounded mixed load through the gateway process to a fast fake upstream: no unexpected 5xx, every request
answered, the client's counts equal to the gateway's own `sqlgate_requests_total`, memory and open files flat, and
every stream closed by exactly one terminal frame and one [DONE]."""

from __future__ import annotations

import asyncio
import statistics
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx

from gateway.settings import Settings
from tests.conftest import API_KEY
from tests.reliability.gateway_process import GatewayProcess, gateway_process
from tests.reliability.observe import Outcome, call, connections, requests_by_route_status, samples
from tests.reliability.scripted import healthy_upstream

SCHEMA = "CREATE TABLE singer (Singer_ID int, Name text, Country text, Age int)"
AUTH = {"authorization": f"Bearer {API_KEY}"}
WRONG_KEY = {"authorization": "Bearer sk-sqlgate-not-a-key-0123456789"}
# One byte over the gateway's default body cap, so the 413 follows the cap wherever it is set.
OVERSIZED_BODY = b'{"prompt": "' + b"x" * int(Settings.model_fields["max_body_bytes"].default) + b'"}'
CACHE_ENTRIES = 256  # small, so the warm-up fills the cache and the measured run sees its steady size


@dataclass(frozen=True)
class Kind:
    """One kind of request in the mix: where it goes, what it sends, what must come back."""

    name: str
    route: str  # the gateway's metric label
    method: str
    path: str
    expect: int
    stream: bool = False
    body: Callable[[int], Any] = lambda _: None
    raw: bytes | None = None
    headers: dict[str, str] = field(default_factory=lambda: AUTH)


def _question(number: int) -> str:
    return f"How many singers are older than {number}?"


MIX: tuple[Kind, ...] = (
    Kind("completion", "completions", "POST", "/v1/completions", 200,
         body=lambda n: {"prompt": _question(n), "schema": SCHEMA}),
    Kind("completion_stream", "completions", "POST", "/v1/completions", 200, stream=True,
         body=lambda n: {"prompt": _question(n), "schema": SCHEMA, "stream": True}),
    Kind("chat", "chat", "POST", "/v1/chat/completions", 200,
         body=lambda n: {"messages": [{"role": "user", "content": _question(n)}], "schema": SCHEMA}),
    Kind("chat_stream_usage", "chat", "POST", "/v1/chat/completions", 200, stream=True,
         body=lambda n: {"messages": [{"role": "user", "content": _question(n)}], "schema": SCHEMA,
                         "stream": True, "stream_options": {"include_usage": True}}),
    Kind("completion", "completions", "POST", "/v1/completions", 200,
         body=lambda n: {"prompt": _question(n), "schema": SCHEMA}),
    Kind("completion_stream", "completions", "POST", "/v1/completions", 200, stream=True,
         body=lambda n: {"prompt": _question(n), "schema": SCHEMA, "stream": True}),
    Kind("sql", "sql", "POST", "/v1/sql", 200, body=lambda n: {"question": _question(n), "schema": SCHEMA}),
    Kind("generate", "generate", "POST", "/generate", 200,
         body=lambda n: {"question": _question(n), "context": SCHEMA}),
    Kind("cached", "completions", "POST", "/v1/completions", 200,
         body=lambda _: {"prompt": "How many singers are there?", "schema": SCHEMA}),
    Kind("cached_stream", "completions", "POST", "/v1/completions", 200, stream=True,
         body=lambda _: {"prompt": "How many singers are there?", "schema": SCHEMA, "stream": True}),
    Kind("models", "models", "GET", "/v1/models", 200),
    Kind("bad_key", "completions", "POST", "/v1/completions", 401, headers=WRONG_KEY,
         body=lambda n: {"prompt": _question(n), "schema": SCHEMA}),
    Kind("question_too_long", "completions", "POST", "/v1/completions", 422,
         body=lambda n: {"prompt": "How many singers? " * 40, "schema": SCHEMA}),
    Kind("malformed_json", "chat", "POST", "/v1/chat/completions", 400,
         raw=b'{"messages": [{"role": "user", "content": "How many'),
    Kind("body_too_large", "completions", "POST", "/v1/completions", 413,
         raw=OVERSIZED_BODY),
    Kind("unknown_model", "completions", "POST", "/v1/completions", 404,
         body=lambda n: {"model": "gpt-4", "prompt": _question(n), "schema": SCHEMA}),
)


@dataclass
class Tally:
    """What the client saw."""

    sent: int = 0
    by_route_status: Counter[tuple[str, str]] = field(default_factory=Counter)
    by_class: Counter[str] = field(default_factory=Counter)
    unexpected: Counter[str] = field(default_factory=Counter)
    server_errors: int = 0
    no_answer: int = 0
    streams: int = 0
    streams_well_closed: int = 0
    stream_problems: list[str] = field(default_factory=list)
    latencies: dict[str, list[float]] = field(default_factory=dict)

    def add(self, kind: Kind, outcome: Outcome) -> None:
        self.sent += 1
        if outcome.status is None:
            self.no_answer += 1
            self.unexpected[f"{kind.name}: no answer ({outcome.transport_error or 'hung'})"] += 1
            return
        self.by_route_status[(kind.route, str(outcome.status))] += 1
        self.by_class[f"{outcome.status // 100}xx"] += 1
        self.server_errors += outcome.status >= 500 or outcome.server_error
        if outcome.status != kind.expect:
            self.unexpected[f"{kind.name}: {outcome.status} {outcome.code}"] += 1
        if kind.stream and outcome.status == 200:
            self.streams += 1
            verdict = outcome.stream
            if verdict is not None and verdict.well_formed and verdict.terminal == "final":
                self.streams_well_closed += 1
            elif len(self.stream_problems) < 5:
                self.stream_problems.append(f"{kind.name}: {verdict}")
        self.latencies.setdefault(kind.name, []).append(outcome.latency_s)

    def latency_summary(self) -> dict[str, dict[str, float]]:
        summary = {}
        for name, values in sorted(self.latencies.items()):
            ordered = sorted(values)
            summary[name] = {"n": len(ordered), "p50_ms": round(1000 * statistics.median(ordered), 1),
                             "p99_ms": round(1000 * ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))], 1)}
        return summary


async def _one(client: httpx.AsyncClient, kind: Kind, number: int, tally: Tally) -> None:
    outcome = await call(client, kind.method, kind.path, json_body=kind.body(number), content=kind.raw,
                         headers=kind.headers if kind.raw is None else {**kind.headers,
                                                                        "content-type": "application/json"},
                         deadline_s=30.0)
    tally.add(kind, outcome)


async def drive(base_url: str, *, total: int, rate: float | None, concurrency: int, tally: Tally,
                first_number: int = 0, on_progress: Callable[[int], None] | None = None) -> float:
    """Send `total` requests of the mix, paced at `rate` per second (open loop) or as fast as `concurrency`
    allows (rate None); returns the seconds it took. `on_progress(done)` runs every `total // 20` answers."""
    gate = asyncio.Semaphore(concurrency)
    step = max(1, total // 20)
    done = 0
    # The client never reuses more connections than it may have requests open.
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)

    async def guarded(number: int) -> None:
        nonlocal done
        try:
            await _one(client, MIX[number % len(MIX)], first_number + number, tally)
        finally:
            gate.release()
            done += 1
            if on_progress is not None and done % step == 0:
                on_progress(done)

    started = time.monotonic()
    async with httpx.AsyncClient(base_url=base_url, timeout=30.0, limits=limits) as client:
        tasks = []
        for number in range(total):
            if rate is not None:
                delay = started + number / rate - time.monotonic()
                if delay > 0:
                    await asyncio.sleep(delay)  # the pacer of an open-loop load generator
            await gate.acquire()
            tasks.append(asyncio.create_task(guarded(number)))
        await asyncio.gather(*tasks)
    return time.monotonic() - started


@dataclass
class SoakResult:
    requests: int
    seconds: float
    target_rate: float | None
    tally: Tally
    metrics_match: bool
    metrics_diff: dict[str, int]
    rss_kib: list[int]
    open_files: list[int]
    baseline: dict[str, Any]
    final: dict[str, Any]
    rss_limit_kib: int
    upstream_requests: int

    @property
    def rss_growth_kib(self) -> int:
        return int(self.final["rss_kib"]) - int(self.baseline["rss_kib"])

    @property
    def passed(self) -> bool:
        t = self.tally
        return (t.server_errors == 0 and not t.unexpected and t.no_answer == 0 and t.sent == self.requests
                and t.streams == t.streams_well_closed and self.metrics_match
                and self.rss_growth_kib <= self.rss_limit_kib
                and self.final["from_clients"] == 0
                and self.final["non_socket_files"] <= self.baseline["non_socket_files"]
                and self.final["to_upstream"] <= self.baseline["concurrency"])

    def as_dict(self) -> dict[str, Any]:
        t = self.tally
        return {
            "passed": self.passed,
            "requests": self.requests, "seconds": round(self.seconds, 1),
            "target_rate_per_s": self.target_rate, "achieved_rate_per_s": round(self.requests / self.seconds, 1),
            "answered": t.sent - t.no_answer, "by_class": dict(t.by_class),
            "by_route_status": {f"{route} {status}": n for (route, status), n in sorted(t.by_route_status.items())},
            "unexpected": dict(t.unexpected), "server_errors": t.server_errors,
            "streams": t.streams, "streams_closed_once": t.streams_well_closed, "stream_problems": t.stream_problems,
            "metrics_match_client": self.metrics_match, "metrics_minus_client": self.metrics_diff,
            "upstream_requests": self.upstream_requests,
            "rss_kib_samples": self.rss_kib, "open_files_samples": self.open_files,
            "baseline": self.baseline, "final": self.final,
            "rss_growth_kib": self.rss_growth_kib, "rss_limit_kib": self.rss_limit_kib,
            "latency": t.latency_summary(),
        }


def _state(gateway: GatewayProcess, upstream_port: int) -> dict[str, Any]:
    shot = gateway.snapshot()
    links = connections(gateway.pid, gateway.port, upstream_port)
    return {"rss_kib": shot.rss_kib, "open_files": shot.open_files,
            "non_socket_files": shot.open_files - shot.sockets, "listening": links.listening,
            "from_clients": links.from_clients, "to_upstream": links.to_upstream}


def _counted(gateway: GatewayProcess) -> tuple[Counter[tuple[str, str]], float]:
    text = httpx.get(f"{gateway.base_url}/metrics", timeout=10.0).text
    in_flight = samples(text).get(("sqlgate_requests_in_flight", frozenset()), 0.0)
    return requests_by_route_status(text), in_flight


def _settled(gateway: GatewayProcess, upstream_port: int, expected: Counter[tuple[str, str]] | None,
             baseline: Counter[tuple[str, str]]) -> tuple[Counter[tuple[str, str]], dict[str, Any]]:
    """Wait (bounded) until nothing but this scrape is in flight, every answered request is counted and the
    clients' connections are gone; return the counts since `baseline` and the process state."""
    deadline = time.monotonic() + 15.0
    while True:
        counts, in_flight = _counted(gateway)
        diff = _served(counts, baseline)
        state = _state(gateway, upstream_port)
        ready = in_flight <= 1 and state["from_clients"] == 0 and (expected is None or diff == expected)
        if ready or time.monotonic() > deadline:
            return diff, state
        time.sleep(0.02)


def _served(counts: Counter[tuple[str, str]], baseline: Counter[tuple[str, str]]) -> Counter[tuple[str, str]]:
    """Requests counted since `baseline`, without the run's own scrapes and health checks."""
    diff = Counter({key: counts[key] - baseline[key] for key in counts if key[0] not in ("metrics", "health")})
    return +diff


def run_soak(*, total: int, rate: float | None, concurrency: int, warmup: int,
             rss_limit_kib: int = 16 * 1024) -> SoakResult:
    """Warm up (fills the cache and the pools), measure the idle gateway, run the load, measure again."""
    with healthy_upstream() as upstream, gateway_process(
        "uvicorn", api_keys=f"tester={API_KEY}", upstream_url=upstream.base_url, rate_limit_per_minute="600000",
        cache_max_entries=str(CACHE_ENTRIES), upstream_read_timeout_s="10", log_level="info",
    ) as gateway:
        warm = Tally()
        asyncio.run(drive(gateway.base_url, total=warmup, rate=None, concurrency=concurrency, tally=warm,
                          first_number=10_000_000))
        _settled(gateway, upstream.port, None, Counter())
        counts_before, _ = _counted(gateway)
        baseline = {**_state(gateway, upstream.port), "concurrency": concurrency}
        rss: list[int] = [baseline["rss_kib"]]
        files: list[int] = [baseline["open_files"]]

        def sample(_: int) -> None:
            shot = gateway.snapshot()
            rss.append(shot.rss_kib)
            files.append(shot.open_files)

        upstream_before = upstream.requests_seen
        tally = Tally()
        seconds = asyncio.run(drive(gateway.base_url, total=total, rate=rate, concurrency=concurrency,
                                    tally=tally, on_progress=sample))
        expected = +Counter(tally.by_route_status)
        served, final = _settled(gateway, upstream.port, expected, counts_before)
        rss.append(final["rss_kib"])
        files.append(final["open_files"])
        keys = set(served) | set(expected)
        diff = {f"{route} {status}": served[(route, status)] - expected[(route, status)]
                for route, status in sorted(keys) if served[(route, status)] != expected[(route, status)]}
        return SoakResult(requests=total, seconds=seconds, target_rate=rate, tally=tally,
                          metrics_match=not diff, metrics_diff=diff, rss_kib=rss, open_files=files,
                          baseline=baseline, final=final, rss_limit_kib=rss_limit_kib,
                          upstream_requests=upstream.requests_seen - upstream_before)
