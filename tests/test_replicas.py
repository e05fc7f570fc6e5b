"""Several vLLM replicas behind one upstream client: fewest in flight wins, a replica that cannot be reached is
skipped at once and probed back, a busy one is only skipped, and probes have their own connections (issue 11).
Faults come from fake upstreams on real sockets; the kill test with two real vLLMs is in tests/e2e."""

from __future__ import annotations

import asyncio

import pytest

from gateway.app import Readiness, create_app, watch_replicas
from gateway.errors import UpstreamError, UpstreamUnavailable
from gateway.observability.metrics import Metrics
from gateway.replicas import ReplicaSet, parse_upstream_urls
from gateway.upstream import UpstreamClient, UpstreamLimits
from tests import faults
from tests.conftest import asgi_client, make_settings
from tests.servers import fake_upstream, free_port

PAYLOAD = {"model": "m", "prompt": "p", "max_tokens": 8}


class RecordedSleep:
    def __init__(self) -> None:
        self.calls: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.calls.append(seconds)


def client(*urls: str, sleep: RecordedSleep | None = None, **limits: float) -> UpstreamClient:
    values: dict[str, float] = {"connect_timeout_s": 0.5, "read_timeout_s": 5.0, "retry_attempts": 3,
                                "retry_budget_s": 5.0}
    values.update(limits)
    return UpstreamClient(",".join(urls), UpstreamLimits(**values),  # type: ignore[arg-type]
                          sleep=sleep or RecordedSleep())


async def until(condition: object, what: str) -> None:
    """Yield to the loop until `condition()` holds (bounded; the fakes answer on their own thread)."""
    for _ in range(4000):
        if condition():  # type: ignore[operator]
            return
        await asyncio.sleep(0.005)
    raise TimeoutError(f"timed out waiting for {what}")


def down_url() -> str:
    return f"http://127.0.0.1:{free_port()}"


def states(upstream: UpstreamClient) -> dict[str, tuple[bool, int]]:
    return {r.name: (r.up, r.in_flight) for r in upstream.replicas.snapshot()}


# ---- issue 11: the readiness probe has its own connection -----------------------------------------------------

async def test_a_probe_reaches_a_busy_vllm_whose_request_pool_is_full() -> None:
    # The only pooled request connection is held by a generation that has not answered yet. A probe that waited
    # for that pool would time out and report the busy vLLM as down (and page).
    with fake_upstream(faults.hang(), faults.ok()) as vllm:
        upstream = client(vllm.base_url, pool_size=1)
        busy = asyncio.create_task(upstream.complete(PAYLOAD))
        await until(lambda: len(vllm.requests) == 1, "the slow request to arrive")
        assert await upstream.probe(PAYLOAD, timeout_s=5.0) is True
        assert not busy.done()
        busy.cancel()
        with pytest.raises(asyncio.CancelledError):
            await busy
        await upstream.aclose()
    assert len(vllm.requests) == 2


# ---- routing -----------------------------------------------------------------------------------------------

async def test_each_request_goes_to_the_replica_with_fewest_in_flight() -> None:
    with fake_upstream(faults.hang()) as slow, fake_upstream(faults.ok()) as fast:
        upstream = client(slow.base_url, fast.base_url)
        held = asyncio.create_task(upstream.complete(PAYLOAD))  # an idle set starts with r0: the slow one
        await until(lambda: len(slow.requests) == 1, "the held request")
        assert states(upstream) == {"r0": (True, 1), "r1": (True, 0)}
        for _ in range(3):
            await upstream.complete(PAYLOAD)
        assert (len(slow.requests), len(fast.requests)) == (1, 3)
        held.cancel()
        with pytest.raises(asyncio.CancelledError):
            await held
        assert states(upstream) == {"r0": (True, 0), "r1": (True, 0)}
        await upstream.aclose()


async def test_an_idle_set_shares_sequential_requests() -> None:
    with fake_upstream(faults.ok()) as first, fake_upstream(faults.ok()) as second:
        upstream = client(first.base_url, second.base_url)
        for _ in range(4):
            await upstream.complete(PAYLOAD)
        await upstream.aclose()
    assert (len(first.requests), len(second.requests)) == (2, 2)


async def test_a_refused_replica_is_skipped_at_once_and_stays_skipped() -> None:
    sleep = RecordedSleep()
    with fake_upstream(faults.ok("SELECT 2")) as alive:
        upstream = client(down_url(), alive.base_url, sleep=sleep)
        body = await upstream.complete(PAYLOAD)
        assert body["choices"][0]["text"] == "SELECT 2"
        # One retry, and no wait before it: the other replica had not been tried.
        assert sleep.calls == [0.0]
        assert states(upstream) == {"r0": (False, 0), "r1": (True, 0)}
        for _ in range(3):
            await upstream.complete(PAYLOAD)
        assert sleep.calls == [0.0] and len(alive.requests) == 4
        await upstream.aclose()


async def test_a_connection_lost_mid_request_fails_that_request_only_and_the_probe_brings_the_replica_back() -> None:
    with fake_upstream(faults.reset(), faults.ok("SELECT 0")) as flaky, fake_upstream(faults.ok("SELECT 1")) as good:
        upstream = client(flaky.base_url, good.base_url)
        # The request in flight when the connection broke is not retried: vLLM may have been generating for it.
        with pytest.raises(UpstreamError) as error:
            await upstream.complete(PAYLOAD)
        assert error.value.status_code == 502 and len(good.requests) == 0
        assert states(upstream)["r0"] == (False, 0)
        assert (await upstream.complete(PAYLOAD))["choices"][0]["text"] == "SELECT 1"
        # Probe-back probes only the replica marked down; it generates now, so it takes requests again.
        readiness = Readiness(upstream, "m", timeout_s=5.0, cache_s=0.0, metrics=Metrics())
        await readiness.probe_back()
        assert states(upstream)["r0"] == (True, 0) and len(good.requests) == 1
        texts = {(await upstream.complete(PAYLOAD))["choices"][0]["text"] for _ in range(2)}
        assert texts == {"SELECT 0", "SELECT 1"}
        await upstream.aclose()


async def test_a_busy_replica_is_retried_elsewhere_but_not_marked_down() -> None:
    sleep = RecordedSleep()
    with fake_upstream(faults.status(503, retry_after="5")) as busy, fake_upstream(faults.ok()) as free:
        upstream = client(busy.base_url, free.base_url, sleep=sleep)
        await upstream.complete(PAYLOAD)
        # The other replica is tried at once, not after the busy one's Retry-After.
        assert sleep.calls == [0.0] and len(free.requests) == 1
        assert states(upstream)["r0"] == (True, 0)
        await upstream.aclose()


async def test_when_every_replica_is_down_retries_back_off_then_503() -> None:
    sleep = RecordedSleep()
    upstream = client(down_url(), down_url(), sleep=sleep)
    with pytest.raises(UpstreamUnavailable) as error:
        await upstream.complete(PAYLOAD)
    await upstream.aclose()
    assert error.value.status_code == 503 and error.value.code == "upstream_unavailable"
    # Second attempt on the other replica at once; the third has none left untried, so it backs off.
    assert len(sleep.calls) == 2 and sleep.calls[0] == 0.0 and sleep.calls[1] > 0.0
    assert states(upstream) == {"r0": (False, 0), "r1": (False, 0)}


async def test_a_stream_holds_its_replica_in_flight_until_closed() -> None:
    with fake_upstream(faults.stream_ok()) as vllm:
        upstream = client(vllm.base_url, down_url())
        stream = await upstream.open_stream(PAYLOAD)
        assert states(upstream)["r0"] == (True, 1)
        texts = [event["choices"][0]["text"] async for event in stream.events() if event["choices"]]
        assert texts == ["SELECT", " count(*)", " FROM singer"]
        await stream.aclose()
        await stream.aclose()  # closing twice releases once
        assert states(upstream)["r0"] == (True, 0)
        await upstream.aclose()


async def test_a_stream_reset_after_the_first_byte_marks_its_replica_down() -> None:
    with fake_upstream(faults.stream(faults.sse_frames(["SELECT"]), reset_after=True)) as vllm:
        upstream = client(vllm.base_url, down_url())
        stream = await upstream.open_stream(PAYLOAD)
        with pytest.raises(UpstreamError):
            async for _ in stream.events():
                pass
        await stream.aclose()
        assert states(upstream)["r0"] == (False, 0)
        await upstream.aclose()


async def test_a_single_url_is_always_tried_even_when_marked_down() -> None:
    replicas = ReplicaSet(["http://127.0.0.1:1"])
    lease = replicas.acquire()
    lease.fail()
    lease.release()
    again = replicas.acquire([lease.replica])
    assert again.replica is lease.replica and replicas.has_fresh([]) is False


# ---- settings, readiness and metrics -----------------------------------------------------------------------

def test_the_setting_takes_several_urls_and_refuses_bad_ones() -> None:
    settings = make_settings(upstream_url=" http://a:8001/, http://b:8001 ")
    assert settings.upstream_url == "http://a:8001,http://b:8001"
    assert parse_upstream_urls(settings.upstream_url) == ("http://a:8001", "http://b:8001")
    for bad in ("http://a:8001,,http://b:8001", "a:8001", "ftp://a", "http://a:1,http://a:1"):
        with pytest.raises(ValueError):
            make_settings(upstream_url=bad)


async def test_ready_and_metrics_report_each_replica_by_position_never_by_url() -> None:
    dead = down_url()
    with fake_upstream(faults.ok()) as vllm:
        app = create_app(make_settings(upstream_url=f"{vllm.base_url},{dead}", ready_cache_s=0.0))
        async with asgi_client(app) as http:
            ready = await http.get("/ready")
            assert ready.status_code == 200
            body = ready.json()
            assert body["replicas"] == [
                {"replica": "r0", "ready": True, "routed": True, "in_flight": 0},
                {"replica": "r1", "ready": False, "routed": False, "in_flight": 0},
            ]
            assert dead not in ready.text and vllm.base_url not in ready.text
            text = (await http.get("/metrics")).text
    assert 'sqlgate_upstream_replica_up{replica="r0"} 1.0' in text
    assert 'sqlgate_upstream_replica_up{replica="r1"} 0.0' in text
    assert 'sqlgate_upstream_replica_ready{replica="r1"} 0.0' in text
    assert 'sqlgate_upstream_replica_failures_total{replica="r1"} 1.0' in text
    assert 'sqlgate_upstream_replica_in_flight{replica="r0"} 0.0' in text
    assert "127.0.0.1" not in text


async def test_the_probe_back_watch_probes_only_replicas_marked_down() -> None:
    class StopAfter(RecordedSleep):
        async def __call__(self, seconds: float) -> None:
            await super().__call__(seconds)
            if len(self.calls) > 2:
                raise asyncio.CancelledError

    with fake_upstream(faults.ok()) as healthy, fake_upstream(faults.reset(), faults.ok()) as back:
        upstream = client(healthy.base_url, back.base_url)
        upstream.replicas.replicas[1].up = False
        readiness = Readiness(upstream, "m", timeout_s=5.0, cache_s=0.0, metrics=Metrics())
        sleep = StopAfter()
        with pytest.raises(asyncio.CancelledError):
            await watch_replicas(readiness, 2.0, sleep=sleep)
        await upstream.aclose()
    # First probe-back: reset, still down; second: it generates, up; third round: nothing is down, no probe.
    assert sleep.calls == [2.0, 2.0, 2.0]
    assert len(healthy.requests) == 0 and len(back.requests) == 2
    assert upstream.replicas.replicas[1].up is True
