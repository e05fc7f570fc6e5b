"""Shared fixtures: settings, real servers on 127.0.0.1 (Redis, vLLM on CPU, the gateway under uvicorn), throwaway
PostgreSQL and MariaDB servers (benchmarks/engine_servers.py), the store's database URLs."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import AbstractContextManager, asynccontextmanager, contextmanager
from pathlib import Path
from typing import Any, NoReturn, TypeVar

import httpx
import pytest
from fastapi import FastAPI

from benchmarks.engine_servers import (
    EngineUnavailable,
    ThrowawayMariaDB,
    ThrowawayPostgres,
    throwaway_mariadb,
    throwaway_postgres,
)
from gateway.settings import Settings
from tests.servers import RedisServer
from tests.servers import redis_server as start_redis

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
        "ready_interval_s": 0,  # no background probe: it would add requests the fault fakes count
        # The store in memory: each app its own, nothing shared between tests (the store's own tests use files
        # and a real PostgreSQL).
        "database_url": "sqlite:///:memory:",
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


# ---- the real stack: vLLM on CPU (tiny trained model) and the gateway under uvicorn ----------------------------

from dataclasses import dataclass, field  # noqa: E402

from tests.e2e.vllm_fixture import tiny_sql_model, vllm_server  # noqa: E402, F401


@dataclass
class GatewayServer:
    base_url: str
    api_key: str
    headers: dict[str, str] = field(default_factory=dict)


@pytest.fixture(scope="session")
def vllm_upstream(vllm_server: Any) -> Any:  # noqa: F811 (the imported fixture, injected by name)
    """The real vLLM (CPU) the gateway talks to, with `.base_url` and `.model`."""
    return vllm_server


@pytest.fixture(scope="session")
def gateway(vllm_upstream: Any) -> Iterator[GatewayServer]:
    """The gateway on a free 127.0.0.1 port in front of the session's real vLLM."""
    from gateway.app import create_app
    from tests.servers import serve_in_thread

    settings = make_settings(upstream_url=vllm_upstream.base_url, upstream_model=vllm_upstream.model)
    with serve_in_thread(create_app(settings)) as server:
        yield GatewayServer(server.base_url, API_KEY, {"authorization": f"Bearer {API_KEY}"})


@pytest.fixture(scope="session")
def gateway_server(gateway: GatewayServer) -> GatewayServer:
    """Alias used by the client and browser tests."""
    return gateway


# ---- real PostgreSQL and MariaDB servers: throwaway ones on unix sockets (benchmarks/engine_servers.py) -----------

_Server = TypeVar("_Server", ThrowawayPostgres, ThrowawayMariaDB)
# PostgreSQL is one of the services the suite runs against (make system-deps installs it): a failure, not a skip.
_POSTGRES_MUST_RUN = "PostgreSQL must run for these tests (launch/system_deps.sh installs it)"


@contextmanager
def _server(start: Callable[[], AbstractContextManager[_Server]], otherwise: Callable[[str], NoReturn],
            why: str) -> Iterator[_Server]:
    """The started server, or `otherwise` (pytest.fail or pytest.skip) saying `why` and what kept it from running."""
    try:
        with start() as server:
            yield server
    except EngineUnavailable as reason:
        otherwise(f"{why}: {reason}")


@pytest.fixture(scope="session")
def postgres_cluster() -> Iterator[ThrowawayPostgres]:
    """One PostgreSQL for the session: the store's shared engine (a fresh database per test: `postgres_url`)."""
    with _server(throwaway_postgres, pytest.fail, _POSTGRES_MUST_RUN) as server:
        yield server


@pytest.fixture(scope="module")
def postgres() -> Iterator[ThrowawayPostgres]:
    """A PostgreSQL of the module's own: the dialect tests fill its data database with their tables."""
    with _server(throwaway_postgres, pytest.fail, _POSTGRES_MUST_RUN) as server:
        yield server


@pytest.fixture(scope="module")
def mariadb() -> Iterator[ThrowawayMariaDB]:
    """A MariaDB of the module's own; where none can run, the tests that need it are skipped."""
    with _server(throwaway_mariadb, pytest.skip,
                 "MariaDB can't run on this machine, so the MySQL dialect is not checked on an engine") as server:
        yield server


@pytest.fixture
def postgres_url(postgres_cluster: ThrowawayPostgres) -> Iterator[str]:
    """A fresh, empty database on the session's PostgreSQL, as a SQLGATE_DATABASE_URL; dropped afterwards."""
    import uuid

    import psycopg

    socket_dir = postgres_cluster.folder
    name = f"sqlgate_{uuid.uuid4().hex[:12]}"
    admin = f"postgresql://postgres@/postgres?host={socket_dir}"
    with psycopg.connect(admin, autocommit=True) as connection:
        connection.execute(f"CREATE DATABASE {name}")
    try:
        yield f"postgresql://postgres@/{name}?host={socket_dir}"
    finally:
        with psycopg.connect(admin, autocommit=True) as connection:
            connection.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A SQLGATE_DATABASE_URL on each of the store's engines: a SQLite file in a folder not made yet, a fresh
    PostgreSQL database."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'run' / 'sqlgate.db'}"
    url: str = request.getfixturevalue("postgres_url")
    return url
