"""Every upstream fault, for plain and streaming requests, through the real gateway under uvicorn on 127.0.0.1
against the fake upstream on real sockets: each must end in its one defined status (or in-band error) within its
bound, leave no upstream connection behind, stay within the retry budget, and the next healthy request must pass."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import socket
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

import httpx
import orjson

from gateway.app import create_app
from gateway.upstream import Sleep
from tests import faults
from tests.conftest import API_KEY, make_settings
from tests.reliability.observe import Outcome, call, metric_total, requests_by_route_status
from tests.reliability.scripted import (
    HEALTHY,
    HEALTHY_STREAM,
    Availability,
    Script,
    ScriptedUpstream,
    garbage_frame,
    reset_mid_body,
    scripted_upstream,
    stall_mid_body,
    truncated_body,
)
from tests.servers import RunningServer, serve_in_thread, wait_for

Mode = Literal["plain", "stream"]
MODES: tuple[Mode, ...] = ("plain", "stream")
BoundKind = Literal["immediate", "timeout", "retried"]
AUTH = {"authorization": f"Bearer {API_KEY}"}
SCHEMA = "CREATE TABLE singer (Singer_ID int, Name text, Country text)"


@dataclass(frozen=True)
class FaultLimits:
    """The gateway's upstream settings for the fault runs: small, so every bound is a few seconds at most."""

    connect_timeout_s: float = 0.5
    # The gateway, the fake and the clients share one interpreter and two cores: 0.5 s was seen to expire before
    # a healthy fake's first byte with five requests at once.
    read_timeout_s: float = 1.0
    retry_attempts: int = 3
    # Two waits of the scripted Retry-After (1 s) fit, with the requests' own time: the budget counts all of it.
    retry_budget_s: float = 3.0
    retry_after_s: int = 1  # what the scripted 429/503 ask for
    slack_s: float = 1.0  # scheduling on 2 shared cores

    def bound(self, kind: BoundKind) -> float:
        """The longest a request may take to end, by how its fault is handled."""
        if kind == "retried":
            return self.retry_budget_s + max(self.connect_timeout_s, self.retry_after_s) + self.slack_s
        if kind == "timeout":
            return self.read_timeout_s + self.slack_s
        return self.slack_s

    def settings(self, upstream_url: str) -> Any:
        return make_settings(
            upstream_url=upstream_url,
            upstream_connect_timeout_s=self.connect_timeout_s,
            upstream_read_timeout_s=self.read_timeout_s,
            upstream_retry_attempts=self.retry_attempts,
            upstream_retry_budget_s=self.retry_budget_s,
            rate_limit_per_minute=0,
        )


@dataclass(frozen=True)
class Expected:
    """The one answer a fault must produce: an HTTP status and error code, or (streams that already started)
    a 200 whose terminal frame is an in-band error with `code`."""

    status: int
    code: str | None = None
    in_band: bool = False
    retry_after: str | None = None

    def describe(self) -> str:
        if self.in_band:
            return f"200 + in-band {self.code} + [DONE]"
        text = f"{self.status} {self.code}" if self.code else f"{self.status}"
        return text + (f" (Retry-After: {self.retry_after})" if self.retry_after else "")

    def met_by(self, outcome: Outcome) -> str | None:
        """None when `outcome` is exactly this answer, else what differs."""
        if outcome.hung or outcome.status is None:
            return f"no answer ({'hung' if outcome.hung else outcome.transport_error})"
        if self.in_band:
            verdict = outcome.stream
            if outcome.status != 200 or verdict is None:
                return f"expected a 200 stream, got {outcome.status}"
            if verdict.problems:
                return "; ".join(verdict.problems)
            if verdict.terminal != "error" or verdict.error_code != self.code:
                return f"stream ended with {verdict.terminal} {verdict.error_code}"
            return None
        if outcome.status != self.status:
            return f"status {outcome.status} {outcome.code}"
        if self.status == 200:
            verdict = outcome.stream
            if verdict is not None and (verdict.problems or verdict.terminal != "final"):
                return f"stream: {'; '.join(verdict.problems) or verdict.terminal}"
            return None
        if outcome.code != self.code:
            return f"code {outcome.code}"
        if self.retry_after is not None and outcome.retry_after != self.retry_after:
            return f"Retry-After {outcome.retry_after}"
        return None


ScriptsFor = Callable[[int], list[Script]]  # request count -> the upstream's script


@dataclass(frozen=True)
class FaultCase:
    name: str
    what: str
    availability: Availability
    plain: ScriptsFor
    stream: ScriptsFor
    expect_plain: Expected
    expect_stream: Expected
    bound: BoundKind
    retries_per_request: int  # how many retries handling it must use; 0 = must not retry

    def expected(self, mode: Mode) -> Expected:
        return self.expect_plain if mode == "plain" else self.expect_stream


def _same(script: Callable[[], Script]) -> ScriptsFor:
    return lambda count: [script()]


def _none(count: int) -> list[Script]:
    return []


FRAMES = faults.sse_frames(HEALTHY_STREAM)
UNAVAILABLE = Expected(503, "upstream_unavailable")
TIMEOUT = Expected(504, "upstream_timeout")
BAD = Expected(502, "upstream_bad_response")
BAD_IN_BAND = Expected(200, "upstream_bad_response", in_band=True)


def catalogue(limits: FaultLimits) -> list[FaultCase]:
    """The fault table (docs/reliability.md prints it)."""
    retries = limits.retry_attempts - 1
    after = str(limits.retry_after_s)
    busy = Expected(503, "upstream_unavailable", retry_after=after)
    return [
        FaultCase("upstream_down", "nothing listens on the upstream port (connection refused)", "down",
                  _none, _none, UNAVAILABLE, UNAVAILABLE, "retried", retries),
        FaultCase("upstream_refusing", "the upstream's accept queue is full: connects time out", "clogged",
                  _none, _none, UNAVAILABLE, UNAVAILABLE, "retried", retries),
        FaultCase("slow_first_byte", "the upstream accepts the request and never answers", "up",
                  _same(lambda: faults.hang()), _same(lambda: faults.hang()), TIMEOUT, TIMEOUT, "timeout", 0),
        FaultCase("stall_mid_response", "the body (plain) or the stream stops after its first part", "up",
                  _same(stall_mid_body), _same(lambda: faults.stream(FRAMES[:1], stall_after=True)),
                  TIMEOUT, Expected(200, "upstream_timeout", in_band=True), "timeout", 0),
        FaultCase("invalid_json", "200 with a body (plain) or an SSE frame (stream) that is not JSON", "up",
                  _same(faults.not_json), _same(garbage_frame), BAD, BAD_IN_BAND, "immediate", 0),
        FaultCase("html_error_page", "a proxy's 502 HTML page instead of vLLM's JSON", "up",
                  _same(faults.html_page), _same(faults.html_page), Expected(502, "upstream_error"),
                  Expected(502, "upstream_error"), "immediate", 0),
        FaultCase("truncated", "the JSON body (plain) or an SSE frame (stream) cut off by the upstream", "up",
                  _same(truncated_body), _same(faults.truncated_frame), BAD, BAD_IN_BAND, "immediate", 0),
        FaultCase("no_done", "a completion without choices (plain); a stream that ends without [DONE]", "up",
                  _same(faults.no_choices), _same(lambda: faults.stream(FRAMES, done=False)), BAD, BAD_IN_BAND,
                  "immediate", 0),
        FaultCase("reset_before_answer", "the connection is reset before any response byte", "up",
                  _same(faults.reset), _same(faults.reset), BAD, BAD, "immediate", 0),
        FaultCase("reset_mid_response", "the connection is reset after part of the body / stream", "up",
                  _same(reset_mid_body), _same(lambda: faults.stream(FRAMES[:1], reset_after=True)), BAD,
                  BAD_IN_BAND, "immediate", 0),
        FaultCase("upstream_500", "vLLM answers 500 (a crash, not overload): not retried", "up",
                  _same(lambda: faults.status(500)), _same(lambda: faults.status(500)),
                  Expected(502, "upstream_error"), Expected(502, "upstream_error"), "immediate", 0),
        FaultCase("rate_limited_429", f"vLLM keeps answering 429 with Retry-After: {after}", "up",
                  _same(lambda: faults.status(429, after)), _same(lambda: faults.status(429, after)),
                  busy, busy, "retried", retries),
        FaultCase("unavailable_503", f"vLLM keeps answering 503 with Retry-After: {after}", "up",
                  _same(lambda: faults.status(503, after)), _same(lambda: faults.status(503, after)),
                  busy, busy, "retried", retries),
        FaultCase("transient_503", "one 503 (Retry-After) per request, then vLLM answers", "up",
                  lambda count: [*(faults.status(503, after) for _ in range(count)), HEALTHY],
                  lambda count: [*(faults.status(503, after) for _ in range(count)), HEALTHY],
                  Expected(200), Expected(200), "retried", 1),
        FaultCase("retry_after_beyond_budget", "429 with Retry-After: 120, longer than the retry budget", "up",
                  _same(lambda: faults.status(429, "120")), _same(lambda: faults.status(429, "120")),
                  Expected(503, "upstream_unavailable", retry_after="120"),
                  Expected(503, "upstream_unavailable", retry_after="120"), "immediate", 0),
    ]


DISCONNECT = FaultCase(
    "client_disconnect", "the client hangs up while the upstream is still working (plain: before the answer; "
    "stream: after the first frame)", "up",
    _same(lambda: faults.hang()), _same(lambda: faults.stream(FRAMES[:1], stall_after=True)),
    Expected(499, "client_closed_request"), Expected(200), "immediate", 0)


@dataclass
class FaultResult:
    """One fault in one mode, as the report shows it."""

    fault: str
    mode: Mode
    expected: str
    bound_s: float
    injected: int
    handled: int = 0
    unexpected_500s: int = 0
    hung: int = 0
    leaked_connections: int = 0
    retries: int = 0
    retry_budget: int = 0
    retries_expected: int = 0
    upstream_requests: int = 0
    max_latency_s: float = 0.0
    late: int = 0  # requests that ended after `bound_s` (figures only; see run_fault)
    recovered: bool = False
    accounted: bool = True  # the gateway's own metrics saw what the client saw
    problems: list[str] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return (self.handled == self.injected and self.accounted and self.unexpected_500s == 0 and self.hung == 0
                and self.leaked_connections == 0 and self.retries == self.retries_expected
                and self.retries <= self.retry_budget and self.recovered)

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "max_latency_s": round(self.max_latency_s, 3), "passed": self.passed}


class ServerErrorLog(logging.Handler):
    """Counts the gateway's own reports of an unhandled exception (the catch-all handlers log them)."""

    LOGGERS = ("sqlgate.errors", "sqlgate.streaming")

    def __init__(self) -> None:
        super().__init__(level=logging.ERROR)
        self.count = 0

    def emit(self, record: logging.LogRecord) -> None:
        self.count += 1

    @contextlib.contextmanager
    def attached(self) -> Iterator[ServerErrorLog]:
        loggers = [logging.getLogger(name) for name in self.LOGGERS]
        for logger in loggers:
            logger.addHandler(self)
        try:
            yield self
        finally:
            for logger in loggers:
                logger.removeHandler(self)


def request_body(mode: Mode, tag: str) -> dict[str, Any]:
    """A valid request; `tag` makes the question unique so that the cache never answers it."""
    body: dict[str, Any] = {"prompt": f"How many singers are there? ({tag})", "schema": SCHEMA}
    if mode == "stream":
        body["stream"] = True
    return body


class _NoWait:
    """The retry sleep for CI runs: records what the gateway asked to wait, returns at once."""

    def __init__(self) -> None:
        self.waits: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)


def no_wait() -> _NoWait:
    return _NoWait()


@contextlib.contextmanager
def gateway_for(upstream: ScriptedUpstream, limits: FaultLimits, sleep: Sleep) -> Iterator[RunningServer]:
    app = create_app(limits.settings(upstream.base_url), retry_sleep=sleep)
    with serve_in_thread(app) as server:
        yield server


async def _metrics(client: httpx.AsyncClient) -> str:
    return (await client.get("/metrics", timeout=10.0)).text


def _gateway_5xx(metrics_text: str) -> int:
    counts = requests_by_route_status(metrics_text)
    return sum(value for (_, status), value in counts.items()
               if status.startswith("5") and status not in ("502", "503", "504"))


def run_fault(case: FaultCase, mode: Mode, *, count: int, limits: FaultLimits, sleep: Sleep) -> FaultResult:
    """Inject `case` into `count` concurrent requests of `mode`, then heal the upstream and check recovery."""
    scripts = (case.plain if mode == "plain" else case.stream)(count)
    bound = limits.bound(case.bound)
    if case is DISCONNECT:
        # The client must be the one to leave: the gateway may not time out on the stalled upstream first.
        limits = dataclasses.replace(limits, read_timeout_s=30.0)
    result = FaultResult(case.name, mode, case.expected(mode).describe(), bound, injected=count,
                         retries_expected=count * case.retries_per_request,
                         retry_budget=count * (limits.retry_attempts - 1))
    with scripted_upstream(case.availability, *scripts) as upstream, ServerErrorLog().attached() as error_log:
        with gateway_for(upstream, limits, sleep) as gateway:
            if case is DISCONNECT:
                outcomes = _leave_mid_request(gateway.base_url, upstream, mode, count, bound, result)
            else:
                outcomes = asyncio.run(_inject(gateway.base_url, mode, count, bound))
            result.leaked_connections = upstream.wait_idle(bound)
            asyncio.run(_recover(gateway.base_url, upstream, mode, result,
                                 counted=(str(case.expected(mode).status), count) if case is DISCONNECT else None))
        # The gateway has stopped and closed its pool: every upstream connection must be gone.
        with contextlib.suppress(TimeoutError):
            wait_for(lambda: upstream.open_connections == 0, "the upstream connections to close", bound)
        result.leaked_connections = max(result.leaked_connections, upstream.open_connections)
        result.upstream_requests = upstream.requests_seen - 1  # less the recovery request
    expected = case.expected(mode)
    for index, outcome in enumerate(outcomes):
        if case is DISCONNECT:
            # What counts is that the upstream request ended soon after the client left.
            mismatch = "the upstream request outlived the client" if outcome.hung else None
        else:
            mismatch = expected.met_by(outcome)
        # Reported, never a failure: how long the OS took to run a request on shared cores is not the gateway's
        # decision. What the gateway decides (the answer, the retries it spent, no hang) is what `passed` checks.
        result.late += outcome.latency_s > bound
        result.max_latency_s = max(result.max_latency_s, outcome.latency_s)
        result.hung += outcome.hung
        result.unexpected_500s += outcome.server_error
        if mismatch is None:
            result.handled += 1
        elif len(result.problems) < 3:
            result.problems.append(f"request {index}: {mismatch}")
    result.unexpected_500s += error_log.count
    return result


async def _inject(base_url: str, mode: Mode, count: int, bound: float) -> list[Outcome]:
    async with httpx.AsyncClient(base_url=base_url, headers=AUTH, timeout=bound + 5) as client:
        return list(await asyncio.gather(*(
            call(client, "POST", "/v1/completions", json_body=request_body(mode, f"fault-{index}"),
                 deadline_s=bound + 2) for index in range(count))))


async def _counted(client: httpx.AsyncClient, status: str, at_least: int) -> str:
    """The metrics text once `at_least` completions with `status` are counted (the gateway counts a request
    after its last byte, so the client can be ahead of it), or at the deadline."""
    deadline = time.monotonic() + 5.0
    text = await _metrics(client)
    while requests_by_route_status(text)[("completions", status)] < at_least and time.monotonic() < deadline:
        await asyncio.sleep(0.01)
        text = await _metrics(client)
    return text


async def _recover(base_url: str, upstream: ScriptedUpstream, mode: Mode, result: FaultResult,
                   counted: tuple[str, int] | None) -> None:
    """Heal the upstream; the very next request must succeed, with no restart of anything. `counted`: the status
    the gateway must have recorded, and how many times, before healing (for hang-ups the client never sees)."""
    async with httpx.AsyncClient(base_url=base_url, headers=AUTH, timeout=10.0) as client:
        before = await _metrics(client)
        if counted is not None:
            before = await _counted(client, *counted)
            seen = requests_by_route_status(before)[("completions", counted[0])]
            if seen != counted[1]:
                result.problems.append(f"the gateway counted {seen} requests with status {counted[0]}")
                result.accounted = False
        upstream.heal()
        outcome = await call(client, "POST", "/v1/completions", json_body=request_body(mode, "recovery"),
                             deadline_s=10.0)
        result.recovered = Expected(200).met_by(outcome) is None
        if not result.recovered:
            result.problems.append(f"recovery: {Expected(200).met_by(outcome)}")
        after = await _counted(client, "200", requests_by_route_status(before)[("completions", "200")] + 1)
        result.retries = int(metric_total(before, "sqlgate_upstream_retries_total"))
        result.unexpected_500s += _gateway_5xx(after)


def _leave_mid_request(base_url: str, upstream: ScriptedUpstream, mode: Mode, count: int, bound: float,
                       result: FaultResult) -> list[Outcome]:
    """Hang up mid-request `count` times; each outcome's latency is how long the upstream request outlived it."""
    outcomes = []
    for index in range(count):
        body = orjson.dumps(request_body(mode, f"leave-{index}"))
        if mode == "plain":
            sock = _send_raw(base_url, body)
            wait_for(_has_seen(upstream, index + 1), "the upstream request", bound + 5)
            sock.close()
        else:
            # The answer is held back until it is checked: the client leaves once the response has started
            # (status and headers sent) and the upstream is generating, having read no text at all.
            with httpx.Client(base_url=base_url, headers=AUTH, timeout=bound + 5) as client, \
                    client.stream("POST", "/v1/completions", content=body,
                                  headers={"content-type": "application/json"}) as response:
                if response.status_code != 200:
                    result.problems.append(f"unexpected status {response.status_code}")
                wait_for(_has_seen(upstream, index + 1), "the upstream request", bound + 5)
        left = time.perf_counter()
        still_busy = upstream.wait_idle(bound + 2)
        outcomes.append(Outcome(status=None, code=None, latency_s=time.perf_counter() - left, hung=still_busy > 0))
    return outcomes


def _has_seen(upstream: ScriptedUpstream, requests: int) -> Callable[[], bool]:
    return lambda: upstream.requests_seen >= requests


def _send_raw(base_url: str, body: bytes) -> socket.socket:
    """A POST written straight to a socket, so the test decides exactly when the client disappears."""
    host, port = base_url.removeprefix("http://").split(":")
    sock = socket.create_connection((host, int(port)), timeout=10.0)
    head = (f"POST /v1/completions HTTP/1.1\r\nhost: {host}\r\nauthorization: Bearer {API_KEY}\r\n"
            f"content-type: application/json\r\ncontent-length: {len(body)}\r\n\r\n")
    sock.sendall(head.encode() + body)
    return sock


def run_matrix(*, count: int, limits: FaultLimits, sleep_factory: Callable[[], Sleep],
               only: set[str] | None = None) -> Iterator[FaultResult]:
    """Every fault in both modes (and the client disconnect), in the catalogue's order."""
    for case in [*catalogue(limits), DISCONNECT]:
        if only is not None and case.name not in only:
            continue
        for mode in MODES:
            yield run_fault(case, mode, count=count, limits=limits, sleep=sleep_factory())
