"""The upstream client against a fake vLLM on real sockets: each fault maps to one error, retries stay in budget."""

from __future__ import annotations

import asyncio

import pytest

from gateway.errors import UpstreamError, UpstreamRejected, UpstreamTimeout, UpstreamUnavailable
from gateway.upstream import UpstreamClient, UpstreamLimits
from tests import faults
from tests.servers import fake_upstream, free_port

PAYLOAD = {"model": "m", "prompt": "p", "max_tokens": 8}


class RecordedSleep:
    def __init__(self) -> None:
        self.calls: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.calls.append(seconds)


def client(base_url: str, sleep: RecordedSleep | None = None, **limits: float) -> UpstreamClient:
    values = {"connect_timeout_s": 0.5, "read_timeout_s": 0.3, "retry_attempts": 3, "retry_budget_s": 5.0}
    values.update(limits)
    return UpstreamClient(base_url, UpstreamLimits(**values), sleep=sleep or RecordedSleep())  # type: ignore[arg-type]


async def test_success_returns_the_body() -> None:
    with fake_upstream(faults.ok("SELECT 1")) as upstream:
        upstream_client = client(upstream.base_url)
        body = await upstream_client.complete(PAYLOAD)
        await upstream_client.aclose()
    assert body["choices"][0]["text"] == "SELECT 1"


async def test_connection_refused_is_retried_then_503() -> None:
    sleep = RecordedSleep()
    upstream_client = client(f"http://127.0.0.1:{free_port()}", sleep)
    with pytest.raises(UpstreamUnavailable) as error:
        await upstream_client.complete(PAYLOAD)
    await upstream_client.aclose()
    assert error.value.status_code == 503 and error.value.code == "upstream_unavailable"
    assert len(sleep.calls) == 2  # three attempts, two back-offs


async def test_503_then_success_recovers_honouring_retry_after() -> None:
    sleep = RecordedSleep()
    with fake_upstream(faults.status(503, retry_after="1"), faults.ok()) as upstream:
        upstream_client = client(upstream.base_url, sleep)
        body = await upstream_client.complete(PAYLOAD)
        await upstream_client.aclose()
    assert body["choices"][0]["text"] == "SELECT count(*) FROM singer"
    assert sleep.calls == [1.0]


async def test_retry_after_beyond_the_budget_gives_up_at_once_and_passes_it_on() -> None:
    sleep = RecordedSleep()
    with fake_upstream(faults.status(429, retry_after="120")) as upstream:
        upstream_client = client(upstream.base_url, sleep)
        with pytest.raises(UpstreamUnavailable) as error:
            await upstream_client.complete(PAYLOAD)
        await upstream_client.aclose()
    assert sleep.calls == []
    assert error.value.headers["retry-after"] == "120"
    assert len(upstream.requests) == 1


@pytest.mark.parametrize(
    ("fault", "error_type", "code"),
    [
        (faults.not_json(), UpstreamError, "upstream_bad_response"),
        (faults.html_page(), UpstreamError, "upstream_error"),
        (faults.no_choices(), UpstreamError, "upstream_bad_response"),
        (faults.reset(), UpstreamError, "upstream_bad_response"),
        (faults.status(500), UpstreamError, "upstream_error"),
        (faults.status(400), UpstreamRejected, "upstream_rejected"),
        (faults.hang(), UpstreamTimeout, "upstream_timeout"),
    ],
)
async def test_each_fault_maps_to_one_error_without_retrying(fault: faults.Fault, error_type: type,
                                                             code: str) -> None:
    sleep = RecordedSleep()
    with fake_upstream(fault) as upstream:
        upstream_client = client(upstream.base_url, sleep)
        with pytest.raises(error_type) as error:
            await upstream_client.complete(PAYLOAD)
        await upstream_client.aclose()
    assert error.value.code == code
    assert sleep.calls == []
    assert len(upstream.requests) == 1


async def test_stream_passes_frames_and_requires_done() -> None:
    with fake_upstream(faults.stream_ok(["SELECT", " 1"])) as upstream:
        upstream_client = client(upstream.base_url)
        stream = await upstream_client.open_stream(PAYLOAD)
        events = [event async for event in stream.events()]
        await stream.aclose()
        await upstream_client.aclose()
    assert [e["choices"][0]["text"] for e in events if e["choices"]] == ["SELECT", " 1"]
    assert events[-1]["usage"]["completion_tokens"] == 2


@pytest.mark.parametrize(
    ("fault", "code"),
    [
        (faults.stream(faults.sse_frames(["SELECT"]), done=False), "upstream_bad_response"),
        (faults.truncated_frame(), "upstream_bad_response"),
        (faults.stream(faults.sse_frames(["SELECT"]), reset_after=True), "upstream_bad_response"),
        (faults.stream(faults.sse_frames(["SELECT"]), stall_after=True), "upstream_timeout"),
    ],
)
async def test_stream_faults_after_the_first_byte_raise_while_reading(fault: faults.Fault, code: str) -> None:
    with fake_upstream(fault) as upstream:
        upstream_client = client(upstream.base_url)
        stream = await upstream_client.open_stream(PAYLOAD)
        with pytest.raises(UpstreamError) as error:
            async for _ in stream.events():
                pass
        await stream.aclose()
        await upstream_client.aclose()
    assert error.value.code == code


async def test_stream_open_is_retried_before_the_first_byte() -> None:
    sleep = RecordedSleep()
    with fake_upstream(faults.status(503), faults.stream_ok()) as upstream:
        upstream_client = client(upstream.base_url, sleep)
        stream = await upstream_client.open_stream(PAYLOAD)
        assert [e async for e in stream.events()]
        await stream.aclose()
        await upstream_client.aclose()
    assert len(sleep.calls) == 1


async def test_closing_a_stream_early_closes_the_upstream_connection() -> None:
    release = asyncio.Event()
    with fake_upstream(faults.stream(faults.sse_frames(["SELECT"]), stall_after=True, release=release)) as upstream:
        upstream_client = client(upstream.base_url, read_timeout_s=5.0)
        stream = await upstream_client.open_stream(PAYLOAD)
        async for _ in stream.events():
            break
        await stream.aclose()
        await upstream_client.aclose()
        from tests.servers import wait_for
        wait_for(lambda: upstream.open_connections == 0, "the upstream connection to close")


async def test_probe_is_false_on_any_failure_and_true_on_a_generation() -> None:
    with fake_upstream(faults.ok()) as upstream:
        upstream_client = client(upstream.base_url)
        assert await upstream_client.probe(PAYLOAD, 1.0)
        await upstream_client.aclose()
    with fake_upstream(faults.hang()) as upstream:
        upstream_client = client(upstream.base_url, read_timeout_s=5.0)
        assert not await upstream_client.probe(PAYLOAD, 0.2)
        await upstream_client.aclose()


async def test_sequential_requests_reuse_one_kept_alive_connection() -> None:
    with fake_upstream(faults.ok("SELECT 1")) as upstream:
        upstream_client = client(upstream.base_url)
        for _ in range(5):
            await upstream_client.complete(PAYLOAD)
        await upstream_client.aclose()
    assert len(upstream.requests) == 5
    assert upstream.connections == 1


async def test_a_connection_the_server_closed_is_not_reused() -> None:
    # vLLM closes idle connections after its keep-alive; an answer followed by a close stands in for that.
    with fake_upstream(faults.answer_then_close(), faults.ok("SELECT 2")) as upstream:
        upstream_client = client(upstream.base_url)
        first = await upstream_client.complete(PAYLOAD)
        second = await upstream_client.complete(PAYLOAD)
        await upstream_client.aclose()
    assert first["choices"][0]["text"] == "SELECT count(*) FROM singer"
    assert second["choices"][0]["text"] == "SELECT 2"
    assert upstream.connections == 2
