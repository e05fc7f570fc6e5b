"""What is kept between requests never serves a wrong answer (issue 25): a refusal that an upstream failure caused is
never cached, one from a complete vote only for the short refusal TTL; the requests waiting on a failed flight
elect one new leader instead of each asking vLLM."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest

from gateway.app import create_app
from tests import faults
from tests.conftest import asgi_client, make_settings
from tests.servers import RedisServer, fake_upstream
from tests.test_answer_pipeline import GOOD, identical_requests_held_on_one_flight

BROKEN = "SELECT count(* FROM singer"
COUNT = "SELECT count(*) FROM singer"
SINGER = "CREATE TABLE singer (Singer_ID int, Name text, Country text)"
REQUEST = {"question": "How many singers?", "schema": SINGER}


async def ask_twice(upstream_faults: list[faults.Fault], **settings: Any
                    ) -> tuple[httpx.Response, httpx.Response, int]:
    """The same request twice against one gateway; the fake's faults are consumed one per upstream call."""
    with fake_upstream(*upstream_faults) as upstream:
        app = create_app(make_settings(upstream_url=upstream.base_url, sql_candidates=2, **settings))
        async with asgi_client(app) as client:
            first = await client.post("/v1/sql", json=REQUEST)
            second = await client.post("/v1/sql", json=REQUEST)
        return first, second, len(upstream.requests)


async def test_a_refusal_caused_by_a_503_of_the_candidate_call_is_never_cached() -> None:
    # Greedy fails the check, the sampling call gets 503 (vLLM restarting): 422. Once vLLM is back, the same
    # request is answered afresh, not by the refusal from the cache.
    first, second, calls = await ask_twice([faults.ok(BROKEN), faults.status(503), faults.ok(COUNT)],
                                           upstream_retry_attempts=1)
    assert first.status_code == 422, first.text
    assert first.json()["error"]["check"]["repair"]["failed"] is True
    assert second.status_code == 200, second.text
    assert second.json()["sql"] == COUNT and second.json()["cached"] is False
    assert calls == 3


async def test_a_refusal_caused_by_a_candidate_call_that_ran_out_of_time_is_never_cached() -> None:
    never = asyncio.Event()
    first, second, calls = await ask_twice(
        [faults.ok(BROKEN), faults.held(never, faults.candidates([COUNT])), faults.ok(COUNT)],
        sql_candidate_budget_s=0.2)
    assert first.status_code == 422, first.text
    assert first.json()["error"]["check"]["repair"]["timed_out"] is True
    assert second.status_code == 200, second.text
    assert second.json()["sql"] == COUNT and calls == 3


@pytest.mark.redis
async def test_a_refusal_from_a_complete_vote_is_cached_for_the_short_refusal_ttl_only(
        redis_server: RedisServer) -> None:
    from redis.asyncio import Redis

    url = redis_server.url.rsplit("/", 1)[0] + "/5"  # a database of this test's own: no other test's keys
    redis = Redis.from_url(url)
    await redis.flushdb()
    try:
        first, second, calls = await ask_twice(
            [faults.ok(BROKEN), faults.candidates([BROKEN, "SELECT FROM"]), faults.ok(COUNT)],
            redis_url=url, cache_ttl_seconds=86400, cache_refusal_ttl_seconds=120)
        keys = [key async for key in redis.scan_iter("sqlgate:cache:*")]
        ttls = [await redis.ttl(key) for key in keys]
    finally:
        await redis.flushdb()
        await redis.aclose()
    assert first.status_code == second.status_code == 422
    assert first.json()["error"]["check"]["repair"] | {"latency_ms": 0} == {
        "asked": 2, "passing": 0, "votes": 0, "won": False, "reason": "invalid_sql", "latency_ms": 0,
        "timed_out": False, "failed": False}
    assert second.headers["x-sqlgate-cache"] == "hit" and calls == 2  # the vote's refusal, from the cache
    assert len(ttls) == 1 and 0 < ttls[0] <= 120


async def test_refusals_are_not_cached_at_all_when_their_ttl_is_zero() -> None:
    first, second, calls = await ask_twice(
        [faults.ok(BROKEN), faults.candidates([BROKEN, "SELECT FROM"]), faults.ok(COUNT)],
        cache_refusal_ttl_seconds=0)
    assert first.status_code == 422 and second.status_code == 200 and calls == 3


def test_followers_of_a_failed_flight_elect_one_new_leader() -> None:
    # Six identical requests: the leader's upstream call fails; of the five waiting on it, one asks vLLM and the
    # other four wait on that one (before: each of the five asked vLLM itself).
    release = asyncio.Event()
    with fake_upstream(faults.held(release, faults.status(500)), faults.ok(GOOD)) as upstream:
        results = identical_requests_held_on_one_flight(upstream, release, 6)
    assert sorted(r.status_code for r in results) == [200] * 5 + [502]
    assert len(upstream.requests) == 2
    assert {r.json()["choices"][0]["text"] for r in results if r.status_code == 200} == {GOOD}
