"""Exact-answer cache for deterministic requests: keys, and the in-process and Redis stores behind one interface."""

from __future__ import annotations

import hashlib
import logging
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Any, Protocol

import orjson
from redis.asyncio import Redis
from redis.exceptions import RedisError

logger = logging.getLogger("sqlgate.cache")

CachedValue = dict[str, Any]


def cache_key(*, model: str, settings: str, dialect: str, prompt: str) -> str:
    """Exactly what decides the answer: the model (its fingerprint), the settings that generate and judge it, the
    requested dialect and the rendered prompt the model sees (so a changed comment in the schema is another key)."""
    return hashlib.sha256(orjson.dumps([model, settings, dialect, prompt])).hexdigest()


class ResponseCache(Protocol):
    name: str
    enabled: bool

    async def get(self, key: str) -> CachedValue | None: ...

    async def set(self, key: str, value: CachedValue, ttl_s: float | None = None) -> None:
        """Keep `value` for `ttl_s` seconds (None: the cache's own TTL)."""
        ...

    async def aclose(self) -> None: ...


class NoCache:
    name = "off"
    enabled = False

    async def get(self, key: str) -> CachedValue | None:
        return None

    async def set(self, key: str, value: CachedValue, ttl_s: float | None = None) -> None:
        return None

    async def aclose(self) -> None:
        return None


class MemoryCache:
    """LRU with a TTL; entries are copied in and out so callers can't mutate what is stored."""

    name = "memory"
    enabled = True

    def __init__(self, max_entries: int, ttl_s: float, clock: Callable[[], float] = time.monotonic) -> None:
        self._entries: OrderedDict[str, tuple[float, bytes]] = OrderedDict()
        self._max_entries = max_entries
        self._ttl_s = ttl_s
        self._clock = clock

    async def get(self, key: str) -> CachedValue | None:
        entry = self._entries.get(key)
        if entry is None:
            return None
        expires_at, blob = entry
        if expires_at <= self._clock():
            del self._entries[key]
            return None
        self._entries.move_to_end(key)
        value: CachedValue = orjson.loads(blob)
        return value

    async def set(self, key: str, value: CachedValue, ttl_s: float | None = None) -> None:
        self._entries[key] = (self._clock() + (self._ttl_s if ttl_s is None else ttl_s), orjson.dumps(value))
        self._entries.move_to_end(key)
        while len(self._entries) > self._max_entries:
            self._entries.popitem(last=False)

    def __len__(self) -> int:
        return len(self._entries)

    async def aclose(self) -> None:
        self._entries.clear()


class RedisCache:
    """Survives gateway restarts and is shared by replicas. A Redis failure is a miss, never a failed request."""

    name = "redis"
    enabled = True

    def __init__(self, redis: Redis, ttl_s: int, prefix: str = "sqlgate:cache:") -> None:
        self._redis = redis
        self._ttl_s = ttl_s
        self._prefix = prefix

    async def get(self, key: str) -> CachedValue | None:
        try:
            blob = await self._redis.get(self._prefix + key)
        except (RedisError, OSError) as exc:
            logger.warning("cache read failed, treating as a miss: %s", type(exc).__name__)
            return None
        if blob is None:
            return None
        try:
            value: CachedValue = orjson.loads(blob)
        except orjson.JSONDecodeError:
            return None
        return value

    async def set(self, key: str, value: CachedValue, ttl_s: float | None = None) -> None:
        seconds = self._ttl_s if ttl_s is None else max(1, int(ttl_s))
        try:
            await self._redis.set(self._prefix + key, orjson.dumps(value), ex=seconds)
        except (RedisError, OSError) as exc:
            logger.warning("cache write failed: %s", type(exc).__name__)

    async def aclose(self) -> None:
        return None
