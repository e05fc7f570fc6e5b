"""Killing the gateway between writes loses nothing it acknowledged: a real `python -m gateway` process rates
answers as fast as a client sends, is SIGKILLed while ratings are in flight, and every rating that got its 201 is
in the store afterwards, on a SQLite file (WAL, synchronous=FULL) and on a real PostgreSQL server (committed)."""

from __future__ import annotations

import signal
import sqlite3
import threading

import httpx

from tests import faults
from tests.conftest import API_KEY
from tests.reliability.gateway_process import gateway_process
from tests.servers import fake_upstream, wait_for

SCHEMA = "CREATE TABLE singer (Singer_ID int, Name text, Country text)"
QUESTIONS = ["How many singers do we have?", "Which singers are from France?", "List every singer's name."]
ACKNOWLEDGED_BEFORE_KILL = 25


def stored_feedback_ids(url: str) -> set[str]:
    if url.startswith("sqlite:///"):
        with sqlite3.connect(url[len("sqlite:///"):]) as connection:
            return {row[0] for row in connection.execute("SELECT id FROM feedback")}
    import psycopg

    with psycopg.connect(url) as connection:
        return {row[0] for row in connection.execute("SELECT id FROM feedback").fetchall()}


def test_acknowledged_feedback_survives_a_sigkill_of_the_gateway(store_url: str) -> None:
    settings = {"api_keys": f"tester={API_KEY}", "database_url": store_url, "cache_enabled": "false",
                "sql_candidates": "0", "rate_limit_per_minute": "0"}
    acknowledged: list[str] = []
    with fake_upstream(faults.ok("SELECT count(*) FROM singer")) as upstream:
        with (gateway_process("gateway", upstream_url=upstream.base_url, **settings) as gateway,
              httpx.Client(base_url=gateway.base_url, headers={"authorization": f"Bearer {API_KEY}"},
                           timeout=30) as client):
            answer_ids = [client.post("/v1/sql", json={"question": q, "schema": SCHEMA}).json()["id"]
                          for q in QUESTIONS]

            def keep_rating() -> None:
                number = 0
                while True:
                    body = {"id": answer_ids[number % len(answer_ids)], "rating": ("up", "down")[number % 2],
                            "comment": f"rating {number}"}
                    try:
                        response = client.post("/v1/feedback", json=body)
                    except httpx.TransportError:
                        return  # the gateway is gone
                    if response.status_code == 201:
                        acknowledged.append(response.json()["id"])
                    number += 1

            writer = threading.Thread(target=keep_rating)
            writer.start()
            try:
                wait_for(lambda: len(acknowledged) >= ACKNOWLEDGED_BEFORE_KILL, "ratings acknowledged", 60)
                gateway.process.send_signal(signal.SIGKILL)  # while the writer's next rating is in flight
                assert gateway.process.wait(timeout=30) == -signal.SIGKILL
            finally:
                writer.join(timeout=30)
        kept = stored_feedback_ids(store_url)
        assert set(acknowledged) <= kept, f"lost: {sorted(set(acknowledged) - kept)}"
        assert len(acknowledged) >= ACKNOWLEDGED_BEFORE_KILL
        # A gateway started on the same store after the kill opens it (nothing half-written) and still finds the
        # answers the ratings named.
        with gateway_process("gateway", upstream_url=upstream.base_url, **settings) as again:
            response = httpx.post(f"{again.base_url}/v1/feedback", json={"id": answer_ids[0], "rating": "up"},
                                  headers={"authorization": f"Bearer {API_KEY}"}, timeout=30)
            assert response.status_code == 201, response.text
            exported = httpx.get(f"{again.base_url}/v1/feedback/export",
                                 headers={"authorization": f"Bearer {API_KEY}"}, timeout=30).json()
    assert exported["counts"]["rows"] >= 1
