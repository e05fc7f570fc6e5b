"""The vLLM client: timeouts, the one retry layer, streaming pass-through and the fault taxonomy.

Fault taxonomy (each maps to exactly one gateway error):

| fault                                   | retried            | answer                         |
|-----------------------------------------|--------------------|--------------------------------|
| connect refused / connect or pool timeout | yes              | 503 upstream_unavailable       |
| 503 or 429 from vLLM (Retry-After kept) | yes                | 503 upstream_unavailable       |
| read timeout (no byte for read_timeout) | no                 | 504 upstream_timeout           |
| connection reset, protocol error        | no                 | 502 upstream_bad_response      |
| other 5xx, 404, 401 from vLLM           | no                 | 502 upstream_error             |
| 400 / 422 from vLLM                     | no                 | 400 upstream_rejected          |
| body not JSON, no choices, bad SSE      | no                 | 502 upstream_bad_response      |

The transport is aiohttp, not httpx: on the 2-core hosts this gateway is benchmarked on, one forwarded request cost
~2.4 ms of CPU in httpx/httpcore against ~0.2 ms in aiohttp (C parser, no anyio layer), which was most of the
gateway's overhead (docs/benchmarks.md, section 1). There is no separate write timeout: request bodies are
a few KiB and fit the loopback socket's buffer, so a write cannot stall; the read timeout runs from the request on.

Retries happen only before any byte has gone downstream: a stream is opened (headers received) inside the retry
loop, and everything after that is reported in-band.

Several replicas (a comma-separated base URL): each attempt asks the replica set (gateway/replicas.py) for the
replica up with the fewest requests in flight, not yet tried by this request; a retry goes to another replica at
once when one is left, and waits the usual backoff only when every replica has been tried. A refused or lost
connection marks its replica down until a readiness probe generates on it again. Probes use a session of their own,
so a pool full of slow requests does not make a busy vLLM look dead (issue 11).
"""

from __future__ import annotations

import asyncio
import logging
import math
import random
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

import aiohttp
import orjson
from tenacity import AsyncRetrying, RetryCallState, retry_if_exception, stop_after_attempt, stop_after_delay

from gateway.errors import (
    GatewayError,
    UpstreamError,
    UpstreamRejected,
    UpstreamTimeout,
    UpstreamUnavailable,
)
from gateway.replicas import Replica, ReplicaLease, ReplicaSet

logger = logging.getLogger("sqlgate.upstream")

Sleep = Callable[[float], Awaitable[None]]


@dataclass(frozen=True)
class UpstreamLimits:
    """Every timeout, pool size and retry budget of the upstream client, in one place."""

    connect_timeout_s: float = 2.0
    read_timeout_s: float = 60.0
    pool_size: int = 256
    # Below vLLM's own keep-alive (uvicorn's 5 s), so the gateway never reuses a connection vLLM is closing.
    keepalive_s: float = 4.0
    retry_attempts: int = 3
    retry_budget_s: float = 8.0
    backoff_base_s: float = 0.2
    backoff_max_s: float = 2.0


class RetryableStatus(UpstreamUnavailable):
    """503/429 from vLLM; carries the Retry-After it asked for."""

    def __init__(self, status: int, retry_after_s: float | None) -> None:
        headers = {"retry-after": str(max(1, math.ceil(retry_after_s)))} if retry_after_s is not None else {}
        super().__init__(
            f"The model server is busy or unavailable (HTTP {status}). Retry shortly.", headers=headers
        )
        self.retry_after_s = retry_after_s


def _parse_retry_after(value: str | None) -> float | None:
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None


def _is_retryable(exc: BaseException) -> bool:
    return isinstance(exc, RetryableStatus | _ConnectFailed)


class _ConnectFailed(UpstreamUnavailable):
    pass


class _ConnectionLost(UpstreamError):
    """The connection broke mid-exchange (reset, protocol error): the same answer as any UpstreamError, but it also
    marks the replica down."""


def _map_transport_error(exc: Exception) -> GatewayError:
    if isinstance(exc, aiohttp.ClientConnectorError | aiohttp.ConnectionTimeoutError):
        return _ConnectFailed("The model server is not reachable. Retry shortly.")
    if isinstance(exc, TimeoutError):
        return UpstreamTimeout("The model server did not answer in time.")
    return _ConnectionLost("The model server dropped the connection.")


def _marks_down(exc: BaseException) -> bool:
    """A replica that could not be reached is routed around; one that is busy or answered badly is not."""
    return isinstance(exc, _ConnectFailed | _ConnectionLost)


# Everything aiohttp raises for a broken exchange: its own errors, timeouts, and a line over the reader's limit.
TRANSPORT_ERRORS = (aiohttp.ClientError, TimeoutError, ValueError)


def _status_error(status: int, retry_after: str | None) -> GatewayError:
    if status in (429, 503):
        return RetryableStatus(status, _parse_retry_after(retry_after))
    if status in (400, 422):
        return UpstreamRejected(f"The model server rejected the request (HTTP {status}).")
    return UpstreamError(f"The model server failed (HTTP {status}).", code="upstream_error")


@dataclass
class UpstreamStream:
    """An open SSE stream from vLLM: iterate `events()` for parsed JSON chunks; always `aclose()`."""

    response: aiohttp.ClientResponse
    opened_at: float
    finished: bool = False
    # The replica this stream holds in flight until `aclose()`; None for a stream built outside the client.
    lease: ReplicaLease | None = None

    async def events(self) -> AsyncIterator[dict[str, Any]]:
        try:
            async for raw in self.response.content:
                line = raw.strip()
                if not line.startswith(b"data:"):
                    continue  # blank separators, comments (":"), and fields other than data
                data = line[5:].strip()
                if data == b"[DONE]":
                    self.finished = True
                    break
                try:
                    event = orjson.loads(data)
                except orjson.JSONDecodeError:
                    raise UpstreamError("The model server sent a malformed stream frame.") from None
                if not isinstance(event, dict):
                    raise UpstreamError("The model server sent a malformed stream frame.")
                if "error" in event:
                    raise UpstreamError("The model server reported an error mid-stream.", code="upstream_error")
                yield event
        except TRANSPORT_ERRORS as exc:
            error = _map_transport_error(exc)
            if self.lease is not None and _marks_down(error):
                self.lease.fail()
            raise error from None
        if not self.finished:
            raise UpstreamError("The model server ended the stream early.")

    async def aclose(self) -> None:
        # A stream left unfinished closes its connection: that is how vLLM learns to stop generating for it.
        if self.finished:
            self.response.release()
        else:
            self.response.close()
        if self.lease is not None:
            self.lease.release()


class UpstreamClient:
    """One pooled aiohttp session to vLLM's OpenAI routes (one or several replicas), owned by the app's lifespan.

    `base_url` is one URL or several separated by commas."""

    def __init__(
        self,
        base_url: str,
        limits: UpstreamLimits,
        *,
        api_key: str | None = None,
        sleep: Sleep = asyncio.sleep,
        on_retry: Callable[[], None] | None = None,
    ) -> None:
        self.replicas = ReplicaSet.from_setting(base_url)
        self._headers = {"content-type": "application/json"}
        if api_key:
            self._headers["authorization"] = f"Bearer {api_key}"
        self._limits = limits
        # Created on first use: an aiohttp session belongs to the running event loop.
        self._session: aiohttp.ClientSession | None = None
        self._probe_session: aiohttp.ClientSession | None = None
        self._sleep = sleep
        self._on_retry = on_retry

    def _new_session(self, pool_size: int) -> aiohttp.ClientSession:
        limits = self._limits
        return aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=pool_size, keepalive_timeout=limits.keepalive_s),
            # connect: waiting for a pooled connection plus opening one; sock_read: the gap between bytes.
            timeout=aiohttp.ClientTimeout(total=None, connect=limits.connect_timeout_s,
                                          sock_connect=limits.connect_timeout_s,
                                          sock_read=limits.read_timeout_s),
            headers=self._headers,
            auto_decompress=False,
            raise_for_status=False,
            trust_env=False,
        )

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None:
            self._session = self._new_session(self._limits.pool_size)
        return self._session

    def _probe_client(self) -> aiohttp.ClientSession:
        # Its own pool: when every request connection is taken by slow generations, a probe sharing that pool
        # would wait for a free connection, time out, and report a vLLM that is merely busy as down (issue 11).
        if self._probe_session is None:
            self._probe_session = self._new_session(2 * len(self.replicas))
        return self._probe_session

    def encode(self, payload: dict[str, Any]) -> bytes:
        """The body sent to vLLM for `payload` (a seam: the serving benchmarks add `ignore_eos` here)."""
        return orjson.dumps(payload)

    async def _post(self, replica: Replica, payload: dict[str, Any], *, stream: bool = False,
                    session: aiohttp.ClientSession | None = None) -> aiohttp.ClientResponse:
        headers = {"accept": "text/event-stream"} if stream else None
        return await (session or self._client()).post(f"{replica.url}/v1/completions", data=self.encode(payload),
                                                      headers=headers)

    def _retrying(self, tried: list[Replica]) -> AsyncRetrying:
        limits = self._limits

        def wait(state: RetryCallState) -> float:
            if self.replicas.has_fresh(tried):
                return 0.0  # another replica has not been tried yet: no reason to wait before trying it
            exc = state.outcome.exception() if state.outcome else None
            if isinstance(exc, RetryableStatus) and exc.retry_after_s is not None:
                return exc.retry_after_s
            backoff: float = min(limits.backoff_max_s, limits.backoff_base_s * 2.0 ** (state.attempt_number - 1))
            return backoff * (0.5 + random.random() / 2)

        started = time.monotonic()
        waited = 0.0

        async def sleep_within_budget(seconds: float) -> None:
            # A wait (a Retry-After above all) longer than what is left of the budget is not waited for: give up
            # now and let the client see the 503 with its Retry-After. Only a wait that happens counts as a retry.
            # The budget counts the waits themselves too, so that an injected sleep spends it like a real one.
            nonlocal waited
            spent = max(time.monotonic() - started, waited)
            if seconds > limits.retry_budget_s - spent:
                raise _GiveUp()
            waited += seconds
            if self._on_retry is not None:
                self._on_retry()
            await self._sleep(seconds)

        return AsyncRetrying(
            retry=retry_if_exception(_is_retryable),
            stop=stop_after_attempt(limits.retry_attempts) | stop_after_delay(limits.retry_budget_s),
            wait=wait,
            sleep=sleep_within_budget,
            reraise=True,
        )

    async def _with_retries(self, attempt: Callable[[ReplicaLease], Awaitable[Any]]) -> Any:
        """Run `attempt` on a replica per try; the attempt owns its lease (a stream keeps it past this call)."""
        last: GatewayError | None = None
        tried: list[Replica] = []
        try:
            async for state in self._retrying(tried):
                with state:
                    lease = self.replicas.acquire(tried)
                    tried.append(lease.replica)
                    try:
                        return await attempt(lease)
                    except GatewayError as exc:
                        last = exc
                        if _marks_down(exc):
                            lease.fail()
                        raise
        except _GiveUp:
            assert last is not None
            raise last from None
        raise AssertionError("unreachable")  # pragma: no cover

    async def complete(self, payload: dict[str, Any]) -> dict[str, Any]:
        """POST /v1/completions and return its JSON body, with retries before any answer."""

        async def attempt(lease: ReplicaLease) -> dict[str, Any]:
            try:
                async with await self._post(lease.replica, payload) as response:
                    if response.status != 200:
                        raise _status_error(response.status, response.headers.get("retry-after"))
                    content = await response.read()
            except TRANSPORT_ERRORS as exc:
                raise _map_transport_error(exc) from None
            finally:
                lease.release()
            try:
                body = orjson.loads(content)
            except orjson.JSONDecodeError:
                raise UpstreamError("The model server answered something that is not JSON.") from None
            if not isinstance(body, dict) or not body.get("choices") or not isinstance(body["choices"], list):
                raise UpstreamError("The model server's answer has no choices.")
            return body

        result: dict[str, Any] = await self._with_retries(attempt)
        return result

    async def open_stream(self, payload: dict[str, Any]) -> UpstreamStream:
        """Send a streaming request and wait for vLLM's 200 headers (retried); the body is read by the caller."""

        async def attempt(lease: ReplicaLease) -> UpstreamStream:
            try:
                response = await self._post(lease.replica, payload, stream=True)
            except TRANSPORT_ERRORS as exc:
                lease.release()
                raise _map_transport_error(exc) from None
            except BaseException:  # cancelled while connecting: the stream never exists to release it
                lease.release()
                raise
            if response.status != 200:
                response.close()
                lease.release()
                raise _status_error(response.status, response.headers.get("retry-after"))
            return UpstreamStream(response=response, opened_at=time.perf_counter(), lease=lease)

        stream: UpstreamStream = await self._with_retries(attempt)
        return stream

    async def probe(self, payload: dict[str, Any], timeout_s: float) -> bool:
        """True when some replica really generates a token within `timeout_s` (no retries: readiness is a fact
        now). Every replica is probed, and each one's answer marks it up or down."""
        return any(await self.probe_replicas(payload, timeout_s))

    async def probe_replicas(self, payload: dict[str, Any], timeout_s: float,
                             replicas: Sequence[Replica] | None = None) -> list[bool]:
        """Probe `replicas` (default: all) at once, each on the probe session; record and return each answer."""
        targets = list(self.replicas.replicas if replicas is None else replicas)
        answers = await asyncio.gather(*(self._probe_one(replica, payload, timeout_s) for replica in targets))
        for replica, ok in zip(targets, answers, strict=True):
            self.replicas.record_probe(replica, ok)
        return list(answers)

    async def _probe_one(self, replica: Replica, payload: dict[str, Any], timeout_s: float) -> bool:
        try:
            async with asyncio.timeout(timeout_s):
                async with await self._post(replica, payload, session=self._probe_client()) as response:
                    if response.status != 200:
                        return False
                    body = orjson.loads(await response.read())
                return bool(isinstance(body, dict) and body.get("choices"))
        except TRANSPORT_ERRORS:  # orjson.JSONDecodeError is a ValueError
            return False

    async def served_models(self, timeout_s: float) -> list[dict[str, Any]]:
        """vLLM's GET /v1/models entries (id, root, ...) from the first replica that is up (they all serve the same
        model), or [] when it can't be asked now (no retries; the probe session, never the request pool)."""
        replica = next((r for r in self.replicas.replicas if r.up), self.replicas.replicas[0])
        try:
            async with asyncio.timeout(timeout_s):
                async with self._probe_client().get(f"{replica.url}/v1/models") as response:
                    if response.status != 200:
                        return []
                    body = orjson.loads(await response.read())
        except TRANSPORT_ERRORS:  # orjson.JSONDecodeError is a ValueError
            return []
        data = body.get("data") if isinstance(body, dict) else None
        return [entry for entry in data if isinstance(entry, dict)] if isinstance(data, list) else []

    async def aclose(self) -> None:
        for session in (self._session, self._probe_session):
            if session is not None:
                await session.close()
        self._session = self._probe_session = None


class _GiveUp(Exception):
    """Raised from the retry sleep when waiting would overrun the budget."""
