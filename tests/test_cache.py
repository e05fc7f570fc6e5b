import pytest

from gateway.cache import MemoryCache, RedisCache, cache_key
from tests.servers import RedisServer


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def key(**overrides: str) -> str:
    parts = {"model": "folder:abc", "settings": "[v1, greedy, read_only]", "dialect": "sqlite",
             "prompt": "<|im_start|>user\nCREATE TABLE t (a int -- cents\n)\nHow many?<|im_end|>"}
    parts.update(overrides)
    return cache_key(**parts)


def test_key_is_the_same_for_the_same_answer_and_changes_with_anything_that_decides_it() -> None:
    assert key() == key()
    # A schema comment reaches the model, so it is another key (issue 11).
    assert key() != key(prompt="<|im_start|>user\nCREATE TABLE t (a int -- dollars\n)\nHow many?<|im_end|>")
    for field in ("model", "settings", "dialect", "prompt"):
        assert key() != key(**{field: "other"})


async def test_memory_cache_expires_and_evicts_least_recently_used() -> None:
    clock = Clock()
    cache = MemoryCache(max_entries=2, ttl_s=10, clock=clock)
    await cache.set("a", {"v": 1})
    await cache.set("b", {"v": 2})
    assert await cache.get("a") == {"v": 1}  # a is now the most recent
    await cache.set("c", {"v": 3})
    assert await cache.get("b") is None and await cache.get("a") == {"v": 1}
    clock.now = 11
    assert await cache.get("a") is None


async def test_memory_cache_hands_out_copies() -> None:
    cache = MemoryCache(max_entries=2, ttl_s=10)
    await cache.set("a", {"v": [1]})
    got = await cache.get("a")
    assert got is not None
    got["v"].append(2)
    assert await cache.get("a") == {"v": [1]}


@pytest.mark.redis
async def test_redis_cache_survives_a_gateway_restart(redis_server: RedisServer) -> None:
    from redis.asyncio import Redis

    first = Redis.from_url(redis_server.url)
    await RedisCache(first, ttl_s=60).set("k", {"sql": "SELECT 1"})
    await first.aclose()
    second = Redis.from_url(redis_server.url)  # a new process would do exactly this
    try:
        assert await RedisCache(second, ttl_s=60).get("k") == {"sql": "SELECT 1"}
        assert 0 < await second.ttl("sqlgate:cache:k") <= 60
    finally:
        await second.aclose()


@pytest.mark.redis
async def test_redis_cache_failure_is_a_miss_not_an_error() -> None:
    from redis.asyncio import Redis

    from tests.servers import free_port

    client = Redis.from_url(f"redis://127.0.0.1:{free_port()}/0", socket_connect_timeout=0.2)
    try:
        cache = RedisCache(client, ttl_s=60)
        await cache.set("k", {"v": 1})
        assert await cache.get("k") is None
    finally:
        await client.aclose()
