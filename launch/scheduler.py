"""Stop and start the model on SQLGATE_BUSINESS_HOURS: the GPU pod runs ~10 hours on weekdays, not all week.

``python -m launch.scheduler run`` is the supervisor `make up` starts next to the stack when business hours are
set; ``python -m launch.scheduler once`` makes one decision and exits, for a cron line or a systemd timer where a
long-running supervisor is not wanted (docs/runbook.md, "Business hours"). Each decision:

  up when   the hours are open, or open within SQLGATE_SCHEDULE_LEAD_S (the cold start happens before opening),
            or the gateway asked for a wake (SQLGATE_WAKE_ON_REQUEST) less than SQLGATE_WAKE_IDLE_S ago;
  down otherwise.

What is started and stopped: the local vLLM that `make up` recorded in the run folder, or, when
SQLGATE_RUNPOD_API_KEY and SQLGATE_RUNPOD_POD_ID are set, the whole RunPod pod through RunPod's API (the `runpod`
package). The clock and the sleep are injected, so tests run a week of decisions without waiting.
"""

from __future__ import annotations

import argparse
import datetime as dt
import logging
import os
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, Protocol

from pydantic import Field, SecretStr, ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict

from gateway.schedule import BusinessHours, describe_opening, parse_business_hours, parse_timezone

logger = logging.getLogger("sqlgate.scheduler")

DEFAULT_POLL_S: Final = 15.0
Clock = Callable[[], dt.datetime]
Sleep = Callable[[float], None]


class ScheduleSettings(BaseSettings):
    """The scheduler's settings: the gateway's hours, zone and wake file, plus what only the scheduler uses."""

    model_config = SettingsConfigDict(env_prefix="SQLGATE_", extra="ignore", frozen=True)

    business_hours: str | None = None
    timezone: str = "UTC"
    wake_on_request: bool = False
    wake_file: Path = Path(".run/wake")
    wake_cold_start_s: int = Field(180, ge=1, le=3600)
    # A woken model stays up this long after the last request that asked for it.
    wake_idle_s: float = Field(900.0, ge=0)
    # Start this long before opening, so the cold start (CPU 30-100 s, GPU pod resume minutes) is over by then.
    schedule_lead_s: float = Field(300.0, ge=0)
    schedule_poll_s: float = Field(DEFAULT_POLL_S, gt=0)
    runpod_api_key: SecretStr | None = None
    runpod_pod_id: str | None = None
    runpod_gpu_count: int = Field(1, ge=1)

    def hours(self) -> BusinessHours:
        """The parsed hours; refuses to run without them (there would be nothing to schedule)."""
        zone = parse_timezone(self.timezone)
        if not self.business_hours:
            raise ValueError("SQLGATE_BUSINESS_HOURS is not set: there is nothing to schedule")
        return parse_business_hours(self.business_hours, zone)

    def runpod(self) -> tuple[str, str] | None:
        """(api key, pod id) when RunPod is configured; half a configuration is refused."""
        if bool(self.runpod_api_key) != bool(self.runpod_pod_id):
            raise ValueError("set both SQLGATE_RUNPOD_API_KEY and SQLGATE_RUNPOD_POD_ID, or neither")
        if self.runpod_api_key and self.runpod_pod_id:
            return self.runpod_api_key.get_secret_value(), self.runpod_pod_id
        return None


class ModelControl(Protocol):
    """Something the scheduler can start and stop: the local vLLM, or a RunPod pod."""

    def running(self) -> bool: ...

    def start(self) -> None: ...

    def stop(self) -> None: ...


@dataclass(frozen=True)
class Decision:
    up: bool
    reason: str


def decide(hours: BusinessHours, now: dt.datetime, *, lead_s: float, wake_at: dt.datetime | None,
           wake_idle_s: float) -> Decision:
    """Whether the model should run at `now`, and why (pure: the clock is an argument)."""
    if hours.is_open(now):
        return Decision(True, "business hours")
    opening = hours.next_open(now)
    if (opening - now).total_seconds() <= lead_s:
        return Decision(True, f"opening on {describe_opening(opening)}")
    if wake_at is not None and 0 <= (now - wake_at).total_seconds() < wake_idle_s:
        return Decision(True, "woken on request")
    return Decision(False, f"closed until {describe_opening(opening)}")


def wake_time(wake_file: Path | None) -> dt.datetime | None:
    """When the gateway last asked for a wake (the file's modification time), None when it never did."""
    if wake_file is None:
        return None
    try:
        return dt.datetime.fromtimestamp(wake_file.stat().st_mtime, dt.UTC)
    except OSError:
        return None


class Scheduler:
    """Applies `decide` to a control; one `tick` per decision, `run` for a bounded or endless loop."""

    def __init__(self, hours: BusinessHours, control: ModelControl, *, clock: Clock, lead_s: float,
                 wake_file: Path | None, wake_idle_s: float) -> None:
        self.hours = hours
        self.control = control
        self.clock = clock
        self.lead_s = lead_s
        self.wake_file = wake_file
        self.wake_idle_s = wake_idle_s

    def tick(self) -> str | None:
        """Decide once and act: 'started', 'stopped', or None when the model is already as it should be."""
        decision = decide(self.hours, self.clock(), lead_s=self.lead_s, wake_at=wake_time(self.wake_file),
                          wake_idle_s=self.wake_idle_s)
        running = self.control.running()
        if decision.up and not running:
            logger.info("starting the model: %s", decision.reason)
            self.control.start()
            return "started"
        if not decision.up and running:
            logger.info("stopping the model: %s", decision.reason)
            self.control.stop()
            return "stopped"
        return None

    def run(self, *, sleep: Sleep, poll_s: float, ticks: int | None = None) -> list[str | None]:
        """Tick every `poll_s` (the wake file needs polling), `ticks` times or until the process is stopped.

        A failed start or stop is logged and tried again at the next tick, never the end of the supervisor."""
        actions: list[str | None] = []
        while ticks is None or len(actions) < ticks:
            try:
                actions.append(self.tick())
            except Exception as error:  # one bad tick (pod API down, vLLM crash) must not end it
                logger.error("scheduler tick failed: %s", error)
                actions.append("failed")
            sleep(poll_s)
        return actions


# ------------------------------------------------------------------------------------------ controls


class RunPodControl:
    """A RunPod pod through RunPod's GraphQL API (`runpod` package): resume it to start, stop it to stop.

    `ready` is then asked until the model on the pod generates (bounded by `cold_start_s`): a resumed pod boots
    its container and vLLM before it answers. RUNPOD_API_BASE_URL points the package at another API host (tests
    use a local fake of the documented endpoints: this sandbox cannot reach RunPod)."""

    def __init__(self, api_key: str, pod_id: str, *, gpu_count: int, ready: Callable[[float], None],
                 cold_start_s: float) -> None:
        import runpod  # imported here: only pods need it, and it is an optional dependency (`.[runpod]`)

        self._runpod: Any = runpod
        self._api_key = api_key
        self._pod_id = pod_id
        self._gpu_count = gpu_count
        self._ready = ready
        self._cold_start_s = cold_start_s

    def _authorised(self) -> Any:
        # The package reads its key from a module global; set it for each call rather than once at import.
        self._runpod.api_key = self._api_key
        return self._runpod

    def running(self) -> bool:
        pod = self._authorised().get_pod(self._pod_id)
        return bool(pod) and pod.get("desiredStatus") == "RUNNING"

    def start(self) -> None:
        self._authorised().resume_pod(self._pod_id, self._gpu_count)
        self._ready(self._cold_start_s)

    def stop(self) -> None:
        self._authorised().stop_pod(self._pod_id)


class LocalVllmControl:
    """The vLLM `make up` started, as recorded in the run folder's stack.json; restarts reuse its command line
    (the supervisor runs with vLLM's environment) and update the record so `make down` stops the new process."""

    def __init__(self, run_dir: Path, *, cold_start_s: float) -> None:
        from launch import stack  # the stack module imports vLLM helpers; keep this module light for `once`

        self._stack = stack
        self._run = stack.RunFolder(run_dir)
        self._cold_start_s = cold_start_s

    def _record(self) -> Any:
        state = self._run.load()
        if state is None or "vllm" not in state.parts:
            raise RuntimeError(f"no stack recorded in {self._run.path}: run `make up` first")
        return state, state.parts["vllm"]

    def running(self) -> bool:
        _, record = self._record()
        return record.identity_problem() is None

    def stop(self) -> None:
        with self._run.locked():
            _, record = self._record()
            self._stack.stop_part("vllm", record, self._stack.STOP_GRACE_S["vllm"])

    def start(self) -> None:
        from launch.vllm_server import read_log_tail, wait_until_generates

        with self._run.locked():
            state, record = self._record()
            log = Path(record.log)
            process = self._stack.start_background(list(record.command), dict(os.environ), log)
            state.parts["vllm"] = self._stack.record_for(process, list(record.command), record.url, log)
            self._run.save(state)
            try:
                wait_until_generates(record.url, state.served_model_name, self._cold_start_s, process,
                                     log_tail=lambda: read_log_tail(log))
            except Exception:
                self._stack.stop_part("vllm", state.parts["vllm"], self._stack.STOP_GRACE_S["vllm"], process)
                raise


def wait_for_url(url: str) -> Callable[[float], None]:
    """A readiness wait for a remote model: GET `url` until it answers 200, at most the given seconds."""
    import urllib.error
    import urllib.request

    def wait(deadline_s: float) -> None:
        end = time.monotonic() + deadline_s
        while True:
            try:
                with urllib.request.urlopen(url, timeout=10) as response:
                    if response.status == 200:
                        return
            except (OSError, urllib.error.URLError):
                pass
            if time.monotonic() >= end:
                raise TimeoutError(f"{url} did not answer 200 within {deadline_s:.0f} s")
            time.sleep(2.0)

    return wait


def build_control(settings: ScheduleSettings, run_dir: Path) -> ModelControl:
    runpod = settings.runpod()
    if runpod is not None:
        upstream = os.environ.get("SQLGATE_UPSTREAM_URL", "http://127.0.0.1:8001").rstrip("/")
        return RunPodControl(*runpod, gpu_count=settings.runpod_gpu_count, ready=wait_for_url(f"{upstream}/health"),
                             cold_start_s=settings.wake_cold_start_s)
    return LocalVllmControl(run_dir, cold_start_s=settings.wake_cold_start_s)


# ------------------------------------------------------------------------------------------------ CLI


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m launch.scheduler",
                                     description="Start and stop the model on SQLGATE_BUSINESS_HOURS.")
    parser.add_argument("command", choices=("run", "once"),
                        help="run: the supervisor (what `make up` starts); once: one decision, for cron/systemd")
    parser.add_argument("--run-dir", type=Path, default=Path(os.environ.get("SQLGATE_RUN_DIR", ".run")),
                        help="the stack's run folder (default %(default)s)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s scheduler %(levelname)s %(message)s",
                        stream=sys.stderr)
    try:
        settings = ScheduleSettings()
        hours = settings.hours()
        control = build_control(settings, args.run_dir.resolve())
    except (ValidationError, ValueError) as error:
        print(f"scheduler: configuration error: {error}", file=sys.stderr)
        return 2
    scheduler = Scheduler(hours, control, clock=lambda: dt.datetime.now(dt.UTC), lead_s=settings.schedule_lead_s,
                          wake_file=settings.wake_file if settings.wake_on_request else None,
                          wake_idle_s=settings.wake_idle_s)
    if args.command == "once":
        try:
            action = scheduler.tick()
        except Exception as error:  # one line for cron's mail, not a traceback
            print(f"scheduler: {error}", file=sys.stderr)
            return 1
        print(action or "no change")
        return 0
    logger.info("supervising %s on '%s' (%s)", type(control).__name__, hours.text, hours.zone)
    scheduler.run(sleep=time.sleep, poll_s=settings.schedule_poll_s)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
