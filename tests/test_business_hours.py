"""Outside SQLGATE_BUSINESS_HOURS the gateway stays up: generation routes answer 503 `model_asleep` with the next
opening and a Retry-After, /health stays 200, /ready and the metrics say asleep. The clock is injected; the
upstream is a real socket (tests/servers.py) so a test can prove no request reached it."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pytest

from gateway.app import create_app
from tests import faults
from tests.conftest import asgi_client, make_settings
from tests.servers import fake_upstream

HOURS = "mon-fri 08:00-18:00, 2026-12-24"
ZONE = "Europe/Berlin"
FRIDAY_EVENING = dt.datetime(2026, 12, 4, 19, 0, tzinfo=dt.UTC)  # 20:00 in Berlin
FRIDAY_NOON = dt.datetime(2026, 12, 4, 11, 0, tzinfo=dt.UTC)
# From Friday 20:00 to Monday 08:00 Berlin time.
SECONDS_TO_MONDAY = (2 * 24 + 12) * 3600
SCHEMA = "CREATE TABLE singer (Singer_ID int, Name text)"

GENERATION_CALLS: list[tuple[str, dict[str, Any]]] = [
    ("/v1/completions", {"prompt": "How many singers?", "schema": SCHEMA}),
    ("/v1/chat/completions", {"messages": [{"role": "user", "content": "How many singers?"}], "schema": SCHEMA}),
    ("/v1/sql", {"question": "How many singers?", "schema": SCHEMA}),
    ("/generate", {"question": "How many singers?", "context": SCHEMA}),
]


class Clock:
    """An injected clock a test moves by hand."""

    def __init__(self, now: dt.datetime) -> None:
        self.now = now

    def __call__(self) -> dt.datetime:
        return self.now


def metric(client_text: str, name: str) -> float:
    for line in client_text.splitlines():
        if line.startswith(name + " ") or line.startswith(name + "{"):
            return float(line.rsplit(" ", 1)[1])
    raise AssertionError(f"{name} not in /metrics")


@pytest.mark.parametrize(("path", "body"), GENERATION_CALLS)
async def test_outside_hours_every_generation_route_answers_model_asleep_without_calling_vllm(
        path: str, body: dict[str, Any]) -> None:
    with fake_upstream(faults.ok()) as vllm:
        settings = make_settings(upstream_url=vllm.base_url, business_hours=HOURS, timezone=ZONE)
        async with asgi_client(create_app(settings, clock=Clock(FRIDAY_EVENING))) as client:
            response = await client.post(path, json=body)
    assert response.status_code == 503
    error = response.json()["error"]
    assert error["code"] == "model_asleep" and error["type"] == "server_error"
    assert "Monday 2026-12-07 08:00 Europe/Berlin (07:00 UTC)" in error["message"]
    assert response.headers["retry-after"] == str(SECONDS_TO_MONDAY)
    assert vllm.requests == []


async def test_outside_hours_health_stays_up_ready_and_metrics_say_asleep() -> None:
    with fake_upstream(faults.status(503)) as vllm:  # vLLM stopped on schedule: nothing generates
        settings = make_settings(upstream_url=vllm.base_url, business_hours=HOURS, timezone=ZONE,
                                 upstream_retry_attempts=1)
        async with asgi_client(create_app(settings, clock=Clock(FRIDAY_EVENING))) as client:
            assert (await client.get("/health")).status_code == 200
            ready = await client.get("/ready")
            await client.post("/v1/sql", json={"question": "How many?", "schema": SCHEMA})
            text = (await client.get("/metrics")).text
    assert ready.status_code == 503 and ready.json()["error"]["code"] == "model_asleep"
    assert ready.headers["retry-after"] == str(SECONDS_TO_MONDAY)
    assert metric(text, "sqlgate_model_asleep") == 1.0
    assert metric(text, "sqlgate_schedule_open") == 0.0
    assert metric(text, 'sqlgate_rejected_requests_total{reason="asleep"}') == 1.0


async def test_in_hours_the_same_gateway_serves_and_the_gauges_follow_the_clock() -> None:
    clock = Clock(FRIDAY_EVENING)
    with fake_upstream(faults.status(503)) as vllm:
        settings = make_settings(upstream_url=vllm.base_url, business_hours=HOURS, timezone=ZONE,
                                 upstream_retry_attempts=1, ready_cache_s=0)
        async with asgi_client(create_app(settings, clock=clock)) as client:
            asleep = await client.post("/v1/sql", json={"question": "How many?", "schema": SCHEMA})
            clock.now = FRIDAY_NOON
            vllm.faults = [faults.ok()]
            served = await client.post("/v1/sql", json={"question": "How many singers?", "schema": SCHEMA})
            text = (await client.get("/metrics")).text
    assert asleep.status_code == 503
    assert served.status_code == 200, served.text
    assert served.json()["sql"] == "SELECT count(*) FROM singer"
    assert metric(text, "sqlgate_model_asleep") == 0.0 and metric(text, "sqlgate_schedule_open") == 1.0


async def test_outside_hours_a_model_that_generates_is_served() -> None:
    """Someone woke vLLM (or it has not been stopped yet): refusing would only throw an answer away."""
    with fake_upstream(faults.ok()) as vllm:
        settings = make_settings(upstream_url=vllm.base_url, business_hours=HOURS, timezone=ZONE)
        async with asgi_client(create_app(settings, clock=Clock(FRIDAY_EVENING))) as client:
            assert (await client.get("/ready")).status_code == 200
            served = await client.post("/v1/sql", json={"question": "How many singers?", "schema": SCHEMA})
            text = (await client.get("/metrics")).text
    assert served.status_code == 200
    assert metric(text, "sqlgate_model_asleep") == 0.0 and metric(text, "sqlgate_schedule_open") == 0.0


async def test_wake_on_request_writes_the_wake_file_and_retry_after_is_the_cold_start(tmp_path: Path) -> None:
    wake = tmp_path / "run" / "wake"
    with fake_upstream(faults.status(503)) as vllm:
        settings = make_settings(upstream_url=vllm.base_url, business_hours=HOURS, timezone=ZONE,
                                 wake_on_request=True, wake_file=wake, wake_cold_start_s=120)
        async with asgi_client(create_app(settings, clock=Clock(FRIDAY_EVENING))) as client:
            response = await client.post("/v1/completions", json={"prompt": "How many?", "schema": SCHEMA})
    assert response.status_code == 503 and response.json()["error"]["code"] == "model_asleep"
    assert response.headers["retry-after"] == "120"
    assert "being woken up" in response.json()["error"]["message"]
    assert wake.stat().st_mtime == FRIDAY_EVENING.timestamp()


async def test_without_business_hours_the_gateway_is_always_open() -> None:
    with fake_upstream(faults.ok()) as vllm:
        settings = make_settings(upstream_url=vllm.base_url)
        async with asgi_client(create_app(settings, clock=Clock(FRIDAY_EVENING))) as client:
            served = await client.post("/v1/sql", json={"question": "How many singers?", "schema": SCHEMA})
            text = (await client.get("/metrics")).text
    assert served.status_code == 200
    assert metric(text, "sqlgate_model_asleep") == 0.0 and metric(text, "sqlgate_schedule_open") == 1.0


@pytest.mark.parametrize(("overrides", "fragment"), [
    ({"timezone": "Mars/Olympus"}, "SQLGATE_TIMEZONE 'Mars/Olympus'"),
    ({"business_hours": "weekdays 9 to 5"}, "SQLGATE_BUSINESS_HOURS 'weekdays 9 to 5'"),
])
def test_a_bad_zone_or_hours_string_stops_start_up_naming_the_setting(overrides: dict[str, str], fragment: str
                                                                       ) -> None:
    with pytest.raises(ValueError, match=fragment):
        make_settings(**overrides)
