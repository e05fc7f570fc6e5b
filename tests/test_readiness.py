"""Readiness: /ready and `sqlgate_upstream_ready` say whether vLLM really generates, and the gateway keeps the
gauge true on its own between calls of /ready."""

from __future__ import annotations

import asyncio

import orjson
import pytest

from gateway.observability.metrics import Metrics
from gateway.readiness import Readiness, watch_readiness
from gateway.upstream import UpstreamClient, UpstreamLimits
from tests import faults
from tests.servers import fake_upstream, free_port


def gauge(metrics: Metrics) -> float:
    value = metrics.registry.get_sample_value("sqlgate_upstream_ready")
    assert value is not None
    return float(value)


class StopAfter:
    """An injected sleep that records the waits and ends the watch after `count` of them."""

    def __init__(self, count: int) -> None:
        self.count = count
        self.waits: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)
        if len(self.waits) >= self.count:
            raise asyncio.CancelledError


async def test_the_watch_probes_on_its_own_and_the_gauge_follows_the_upstream() -> None:
    metrics = Metrics()
    seen: list[float] = []

    class Observe(StopAfter):
        async def __call__(self, seconds: float) -> None:
            seen.append(gauge(metrics))
            await super().__call__(seconds)

    sleep = Observe(3)
    with fake_upstream(faults.ok("SELECT"), faults.status(503), faults.ok("SELECT")) as vllm:
        upstream = UpstreamClient(vllm.base_url, UpstreamLimits())
        readiness = Readiness(upstream, "qwen2.5-1.5b-sql", timeout_s=5.0, cache_s=0.0, metrics=metrics)
        with pytest.raises(asyncio.CancelledError):
            await watch_readiness(readiness, 15.0, sleep=sleep)
        await upstream.aclose()
    assert seen == [1.0, 0.0, 1.0]
    assert sleep.waits == [15.0, 15.0, 15.0]
    # Each probe really asks for a generated token with the training prompt, not just a health URL.
    bodies = [orjson.loads(request) for request in vllm.requests]
    assert len(bodies) == 3
    assert all(body["max_tokens"] == 1 and "<|im_start|>assistant" in str(body["prompt"]) for body in bodies)


async def test_a_probe_that_breaks_reads_as_not_ready_and_the_watch_goes_on() -> None:
    metrics = Metrics()
    # Nothing listens on the port: every probe's connection is refused.
    upstream = UpstreamClient(f"http://127.0.0.1:{free_port()}", UpstreamLimits())
    readiness = Readiness(upstream, "qwen2.5-1.5b-sql", timeout_s=5.0, cache_s=0.0, metrics=metrics)
    sleep = StopAfter(2)
    with pytest.raises(asyncio.CancelledError):
        await watch_readiness(readiness, 1.0, sleep=sleep)
    await upstream.aclose()
    assert gauge(metrics) == 0.0 and len(sleep.waits) == 2
