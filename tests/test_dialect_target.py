"""check.target_verified at the transport boundary: which level each dialect reaches without a check database,
and a check database that never answers costs at most the deadline and leaves the answer at "translation" (what
PostgreSQL and MySQL check databases prove is in tests/test_dialect_meaning.py, on real servers)."""

from __future__ import annotations

import asyncio
import socket
import threading
from collections.abc import Iterator
from typing import Any

import pytest

from gateway.app import create_app
from tests import faults
from tests.conftest import asgi_client, make_settings
from tests.servers import fake_upstream

SCHEMA = 'CREATE TABLE "Users" ("Id" INTEGER, "FirstName" TEXT)'
SQL = 'SELECT "FirstName" FROM "Users" WHERE "Id" = 1'


async def _ask(dialect: str, count: int = 1, **settings: Any) -> list[tuple[int, dict[str, Any]]]:
    with fake_upstream(faults.ok(SQL)) as upstream:
        upstream.faults = [faults.ok(SQL) for _ in range(count)]
        app = create_app(make_settings(upstream_url=upstream.base_url, cache_enabled=False, sql_candidates=0,
                                       **settings))
        async with asgi_client(app) as client:
            responses = await asyncio.gather(*(client.post("/v1/sql", json={
                "question": f"q{n}", "schema": SCHEMA, "dialect": dialect}) for n in range(count)))
    return [(response.status_code, response.json()) for response in responses]


@pytest.mark.parametrize(("dialect", "level", "note"), [
    ("sqlite", None, None),
    ("duckdb", "engine", None),
    ("tsql", "translation", "no SQL Server (T-SQL) engine runs here"),
    ("postgres", "translation", "no PostgreSQL check database is configured"),
    ("mysql", "translation", "no MySQL check database is configured"),
])
async def test_every_answer_says_how_far_its_dialect_was_verified(dialect: str, level: str | None,
                                                                  note: str | None) -> None:
    [(status, body)] = await _ask(dialect)
    assert status == 200, body
    check = body["check"]
    assert check["target_verified"] == level
    assert check["target_message"] == note
    assert (check["target_engine"] or "").startswith("duckdb") == (dialect == "duckdb")


@pytest.fixture
def silent_database() -> Iterator[str]:
    """A TCP server that accepts connections and never says a word: a check database that hangs."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(16)
    accepted: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        server.settimeout(0.05)
        while not stop.is_set():
            try:
                accepted.append(server.accept()[0])
            except OSError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield f"127.0.0.1:{server.getsockname()[1]}"
    stop.set()
    thread.join()
    for connection in accepted:
        connection.close()
    server.close()


@pytest.mark.parametrize("dialect", ["postgres", "mysql"])
async def test_a_check_database_that_never_answers_costs_the_deadline_not_the_answer(
        dialect: str, silent_database: str) -> None:
    url = (f"postgresql://check@{silent_database}/scratch" if dialect == "postgres"
           else f"mysql://check@{silent_database}/scratch")
    # Three requests at once on a pool of one: each is answered, none waits on the others' hung connection.
    answers = await _ask(dialect, count=3, **{f"check_{dialect}_url": url, "check_timeout_s": 0.2,
                                              "check_pool_size": 1})
    for status, body in answers:
        assert status == 200, body
        assert body["check"]["target_verified"] == "translation"
        message = body["check"]["target_message"]
        assert "did not answer" in message or "busy" in message, message
