"""launch/scheduler.py: the decisions over a simulated week (injected clock, the injected sleep moves it: no
waiting), failures that must not end the supervisor, its configuration errors, and the RunPod control against a
local fake of RunPod's GraphQL API (RunPod itself cannot be reached from here)."""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from gateway.schedule import parse_business_hours, parse_timezone
from launch.scheduler import RunPodControl, Scheduler, decide

REPO_ROOT = Path(__file__).resolve().parents[1]
BERLIN = parse_timezone("Europe/Berlin")
HOURS = parse_business_hours("mon-fri 08:00-18:00, 2026-12-24", BERLIN)
MONDAY_MIDNIGHT = dt.datetime(2026, 12, 7, 0, 0, tzinfo=BERLIN)


def at(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text).replace(tzinfo=BERLIN)


class RecordingControl:
    """The scheduler's side of the control interface, recording what it was told (the real controls, local vLLM
    and RunPod, are tested below and in tests/e2e/test_business_hours_e2e.py)."""

    def __init__(self, clock: SimulatedClock, *, fail_starts: int = 0) -> None:
        self.clock = clock
        self.up = False
        self.events: list[tuple[str, dt.datetime]] = []
        self.fail_starts = fail_starts

    def running(self) -> bool:
        return self.up

    def start(self) -> None:
        if self.fail_starts:
            self.fail_starts -= 1
            raise RuntimeError("vLLM did not generate within 180 s")
        self.up = True
        self.events.append(("start", self.clock()))

    def stop(self) -> None:
        self.up = False
        self.events.append(("stop", self.clock()))


class SimulatedClock:
    """Time that passes only when the scheduler sleeps."""

    def __init__(self, now: dt.datetime) -> None:
        self.now = now

    def __call__(self) -> dt.datetime:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += dt.timedelta(seconds=seconds)


def test_decisions_open_lead_wake_and_closed() -> None:
    kwargs: dict[str, Any] = {"lead_s": 300, "wake_idle_s": 900}
    assert decide(HOURS, at("2026-12-04 10:00"), wake_at=None, **kwargs).up
    assert decide(HOURS, at("2026-12-07 07:56"), wake_at=None, **kwargs).reason.startswith("opening on Monday")
    closed = decide(HOURS, at("2026-12-04 20:00"), wake_at=None, **kwargs)
    assert not closed.up and closed.reason == "closed until Monday 2026-12-07 08:00 Europe/Berlin (07:00 UTC)"
    woken = at("2026-12-05 11:00")
    assert decide(HOURS, at("2026-12-05 11:14"), wake_at=woken, **kwargs).reason == "woken on request"
    assert not decide(HOURS, at("2026-12-05 11:15"), wake_at=woken, **kwargs).up  # idle for 15 minutes
    assert not decide(HOURS, at("2026-12-05 10:59"), wake_at=woken, **kwargs).up  # a wake from the future


def test_a_week_of_ticks_starts_before_each_opening_and_stops_at_each_closing() -> None:
    clock = SimulatedClock(MONDAY_MIDNIGHT)
    control = RecordingControl(clock)
    scheduler = Scheduler(HOURS, control, clock=clock, lead_s=300, wake_file=None, wake_idle_s=900)
    scheduler.run(sleep=clock.sleep, poll_s=60, ticks=7 * 24 * 60)
    starts = [when for kind, when in control.events if kind == "start"]
    stops = [when for kind, when in control.events if kind == "stop"]
    assert [f"{t:%a %H:%M}" for t in starts] == [f"{day} 07:55" for day in ("Mon", "Tue", "Wed", "Thu", "Fri")]
    assert [f"{t:%a %H:%M}" for t in stops] == [f"{day} 18:00" for day in ("Mon", "Tue", "Wed", "Thu", "Fri")]
    assert not control.up  # the weekend


def test_holidays_keep_the_model_down_all_day() -> None:
    clock = SimulatedClock(at("2026-12-23 00:00"))
    control = RecordingControl(clock)
    Scheduler(HOURS, control, clock=clock, lead_s=0, wake_file=None, wake_idle_s=0).run(
        sleep=clock.sleep, poll_s=60, ticks=3 * 24 * 60)
    assert [f"{kind} {when:%d %H:%M}" for kind, when in control.events] == [
        "start 23 08:00", "stop 23 18:00", "start 25 08:00", "stop 25 18:00"]


def test_a_wake_request_starts_the_model_at_night_until_it_idles(tmp_path: Path) -> None:
    wake = tmp_path / "wake"
    clock = SimulatedClock(at("2026-12-05 10:00"))  # Saturday
    control = RecordingControl(clock)
    scheduler = Scheduler(HOURS, control, clock=clock, lead_s=0, wake_file=wake, wake_idle_s=600)
    assert scheduler.tick() is None
    wake.write_text("")
    os.utime(wake, (clock.now.timestamp(),) * 2)  # what the gateway's gate does on a request
    scheduler.run(sleep=clock.sleep, poll_s=60, ticks=15)
    assert [f"{kind} {when:%H:%M}" for kind, when in control.events] == ["start 10:00", "stop 10:10"]


def test_a_failed_start_is_retried_at_the_next_tick_not_the_end_of_the_supervisor() -> None:
    clock = SimulatedClock(at("2026-12-04 09:00"))
    control = RecordingControl(clock, fail_starts=2)
    actions = Scheduler(HOURS, control, clock=clock, lead_s=0, wake_file=None, wake_idle_s=0).run(
        sleep=clock.sleep, poll_s=15, ticks=4)
    assert actions == ["failed", "failed", "started", None]


def scheduler_cli(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("SQLGATE_", "RUNPOD_"))}
    return subprocess.run([sys.executable, "-m", "launch.scheduler", *args], cwd=REPO_ROOT, env={**clean, **env},
                          capture_output=True, text=True, timeout=60, check=False)


@pytest.mark.parametrize(("env", "message"), [
    ({}, "SQLGATE_BUSINESS_HOURS is not set"),
    ({"SQLGATE_BUSINESS_HOURS": "weekdays"}, "SQLGATE_BUSINESS_HOURS 'weekdays': 'weekdays' is malformed"),
    ({"SQLGATE_BUSINESS_HOURS": "mon-fri 08:00-18:00", "SQLGATE_TIMEZONE": "Nowhere/City"},
     "SQLGATE_TIMEZONE 'Nowhere/City'"),
    ({"SQLGATE_BUSINESS_HOURS": "mon-fri 08:00-18:00", "SQLGATE_RUNPOD_POD_ID": "abc"},
     "set both SQLGATE_RUNPOD_API_KEY and SQLGATE_RUNPOD_POD_ID"),
])
def test_the_cli_refuses_a_bad_configuration_naming_the_setting(env: dict[str, str], message: str) -> None:
    done = scheduler_cli("once", **env)
    assert done.returncode == 2 and message in done.stderr, done.stderr


def test_once_without_a_stack_says_to_run_make_up(tmp_path: Path) -> None:
    done = scheduler_cli("once", "--run-dir", str(tmp_path), SQLGATE_BUSINESS_HOURS="mon-sun 00:00-24:00")
    assert done.returncode == 1 and "run `make up` first" in done.stderr


# ---- RunPod, against a local fake of the documented GraphQL endpoint --------------------------------------------


class FakeRunPod:
    """POST /graphql as RunPod documents it: `pod(input: {podId})`, `podResume(input: {podId, gpuCount})`,
    `podStop(input: {podId})`, Bearer auth; it keeps one pod's desiredStatus."""

    def __init__(self, api_key: str, pod_id: str) -> None:
        self.api_key, self.pod_id = api_key, pod_id
        self.status = "EXITED"
        self.calls: list[str] = []
        self.unauthorized = 0

    def answer(self, query: str, authorization: str | None) -> tuple[int, dict[str, Any]]:
        if authorization != f"Bearer {self.api_key}":
            self.unauthorized += 1
            return 401, {"errors": [{"message": "unauthorized"}]}
        pod_id = re.search(r'podId:\s*"([^"]+)"', query)
        if pod_id is None or pod_id[1] != self.pod_id:
            return 200, {"errors": [{"message": "pod not found"}]}
        if "podResume" in query:
            gpus = re.search(r"gpuCount:\s*(\d+)", query)
            self.calls.append(f"resume gpus={gpus[1] if gpus else '?'}")
            self.status = "RUNNING"
            return 200, {"data": {"podResume": {"id": self.pod_id, "desiredStatus": self.status}}}
        if "podStop" in query:
            self.calls.append("stop")
            self.status = "EXITED"
            return 200, {"data": {"podStop": {"id": self.pod_id, "desiredStatus": self.status}}}
        self.calls.append("get")
        return 200, {"data": {"pod": {"id": self.pod_id, "desiredStatus": self.status}}}


@pytest.fixture
def fake_runpod(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeRunPod]:
    fake = FakeRunPod("rp-key-0123456789", "pod-abc123")

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers.get("content-length") or 0)))
            status, answer = (fake.answer(body["query"], self.headers.get("authorization"))
                              if self.path == "/graphql" else (404, {}))
            data = json.dumps(answer).encode()
            self.send_response(status)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    # The `runpod` package's documented switch for its API host.
    monkeypatch.setenv("RUNPOD_API_BASE_URL", f"http://127.0.0.1:{server.server_address[1]}")
    try:
        yield fake
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def test_runpod_control_resumes_waits_for_the_model_and_stops_the_pod(fake_runpod: FakeRunPod) -> None:
    waited: list[float] = []
    control = RunPodControl(fake_runpod.api_key, fake_runpod.pod_id, gpu_count=1, ready=waited.append,
                            cold_start_s=600)
    assert not control.running()
    control.start()
    assert control.running()
    control.stop()
    assert not control.running()
    assert fake_runpod.calls == ["get", "resume gpus=1", "get", "stop", "get"]
    assert waited == [600]  # the resumed pod's model was waited for, bounded by the cold start
    assert fake_runpod.unauthorized == 0


def test_runpod_control_under_the_scheduler_follows_the_hours(fake_runpod: FakeRunPod) -> None:
    clock = SimulatedClock(at("2026-12-04 17:00"))
    control = RunPodControl(fake_runpod.api_key, fake_runpod.pod_id, gpu_count=2, ready=lambda _: None,
                            cold_start_s=600)
    scheduler = Scheduler(HOURS, control, clock=clock, lead_s=0, wake_file=None, wake_idle_s=0)
    assert scheduler.run(sleep=clock.sleep, poll_s=3600, ticks=3) == ["started", "stopped", None]
    assert [call for call in fake_runpod.calls if call != "get"] == ["resume gpus=2", "stop"]


def test_a_wrong_runpod_key_fails_the_tick_without_ending_the_supervisor(fake_runpod: FakeRunPod) -> None:
    clock = SimulatedClock(at("2026-12-04 09:00"))
    control = RunPodControl("rp-wrong-key", fake_runpod.pod_id, gpu_count=1, ready=lambda _: None, cold_start_s=1)
    scheduler = Scheduler(HOURS, control, clock=clock, lead_s=0, wake_file=None, wake_idle_s=0)
    assert scheduler.run(sleep=clock.sleep, poll_s=60, ticks=2) == ["failed", "failed"]
    assert fake_runpod.unauthorized == 2 and fake_runpod.status == "EXITED"
