"""Shared fixtures: settings, real servers on 127.0.0.1 (Redis, vLLM on CPU, the gateway under uvicorn)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from gateway.settings import Settings
from tests.servers import RedisServer, redis_server as start_redis

API_KEY = "sk-sqlgate-test-0123456789abcdef"
SECOND_KEY = "sk-sqlgate-test-second-key-0000"


def make_settings(**overrides: Any) -> Settings:
    """Test settings: two named keys, explicit values for everything a test may depend on."""
    values: dict[str, Any] = {
        "api_keys": f"tester={API_KEY},second={SECOND_KEY}",
        "upstream_url": "http://127.0.0.1:9",
        "rate_limit_per_minute": 1000,
        "upstream_retry_budget_s": 2.0,
        "upstream_read_timeout_s": 30.0,
    }
    values.update(overrides)
    return Settings(**values)


@pytest.fixture
def settings_factory() -> Callable[..., Settings]:
    return make_settings


@asynccontextmanager
async def asgi_client(app: FastAPI, key: str | None = API_KEY) -> AsyncIterator[httpx.AsyncClient]:
    """An in-process client with the app's lifespan running (ASGITransport does not run it)."""
    headers = {"authorization": f"Bearer {key}"} if key else {}
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://gateway", headers=headers) as client:
            yield client


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer]:
    with start_redis() as server:
        yield server


AUTH = {"authorization": f"Bearer {API_KEY}"}
