"""SIGTERM to the gateway process (`python -m gateway`, which applies SQLGATE_SHUTDOWN_GRACE_S) with requests in
flight against a slow but finite upstream: it must stop accepting at once, finish what is in flight, and exit."""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from dataclasses import asdict, dataclass, field
from typing import Any

import httpx

from tests.conftest import API_KEY
from tests.reliability.gateway_process import gateway_process
from tests.reliability.observe import Outcome, call
from tests.reliability.scripted import ForFake, Gate, held, scripted_upstream
from tests.servers import wait_for

AUTH = {"authorization": f"Bearer {API_KEY}"}
SCHEMA = "CREATE TABLE singer (Singer_ID int, Name text)"
EXIT_SLACK_S = 5.0  # interpreter and uvicorn teardown on 2 shared cores


@dataclass
class ShutdownResult:
    scenario: str
    grace_s: float
    in_flight: int
    upstream_held_s: float | None  # how long after SIGTERM the upstream answered (None: never)
    stopped_accepting_s: float | None = None
    exited_after_s: float | None = None
    exit_status: int | None = None
    completed: int = 0
    cut_off: int = 0
    server_errors: int = 0  # cut-off requests answered with a 500 (not the contract's error shape)
    refused_new_request: bool = False
    shutdown_logged: bool = False  # uvicorn's own lines reached the gateway's log
    cut_off_answers: list[str] = field(default_factory=list)  # "status code [stream]" of each cut-off request
    problems: list[str] = field(default_factory=list)

    @property
    def bound_s(self) -> float:
        """The latest the process may exit after SIGTERM."""
        finishes_at = min(self.upstream_held_s, self.grace_s) if self.upstream_held_s is not None else self.grace_s
        return finishes_at + EXIT_SLACK_S

    @property
    def passed(self) -> bool:
        stopped = self.stopped_accepting_s is not None and self.refused_new_request
        exited = self.exited_after_s is not None and self.exited_after_s <= self.bound_s and self.exit_status == 0
        # A finite upstream (within the grace period): everything in flight must finish.
        finished = self.completed == self.in_flight if self.upstream_held_s is not None else True
        # What the grace period cut off ends in the contract's answer, plain or in-band.
        defined = all(" server_shutting_down " in answer for answer in self.cut_off_answers)
        return stopped and exited and finished and defined and self.server_errors == 0

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "bound_s": self.bound_s, "passed": self.passed}


def _request(stream: bool, number: int) -> dict[str, Any]:
    body: dict[str, Any] = {"prompt": f"How many singers are there? (in flight {number})", "schema": SCHEMA}
    if stream:
        body["stream"] = True
    return body


async def _in_flight(base_url: str, count: int) -> list[Outcome]:
    async with httpx.AsyncClient(base_url=base_url, headers=AUTH, timeout=60.0) as client:
        return list(await asyncio.gather(*(
            call(client, "POST", "/v1/completions", json_body=_request(number % 2 == 1, number), deadline_s=60.0)
            for number in range(count))))


def run_shutdown(*, grace_s: float, in_flight: int, release_after_s: float | None) -> ShutdownResult:
    """Start `in_flight` requests (half streaming) that the upstream holds, SIGTERM the gateway, check that it
    refuses new connections, then let the upstream answer `release_after_s` after the signal (or never)."""
    scenario = "finite upstream" if release_after_s is not None else "upstream never answers"
    result = ShutdownResult(scenario, grace_s, in_flight, release_after_s)
    gate = Gate()
    with scripted_upstream("up", ForFake(lambda fake: held(gate, fake))) as upstream:
        with gateway_process("gateway", api_keys=f"tester={API_KEY}", upstream_url=upstream.base_url,
                             shutdown_grace_s=str(grace_s), upstream_read_timeout_s="60",
                             rate_limit_per_minute="0") as gateway:
            outcomes: list[Outcome] = []
            clients = threading.Thread(target=lambda: outcomes.extend(asyncio.run(_in_flight(gateway.base_url,
                                                                                               in_flight))))
            clients.start()
            wait_for(lambda: gate.waiting == in_flight, "the requests to reach the upstream", 30.0)
            sent = gateway.terminate()
            with contextlib.suppress(TimeoutError):
                wait_for(lambda: not gateway.accepting(), "the gateway to stop accepting", 10.0)
                result.stopped_accepting_s = time.monotonic() - sent
            result.refused_new_request = _refused(gateway.base_url)
            if release_after_s is not None:
                opener = threading.Timer(max(0.0, release_after_s - (time.monotonic() - sent)), gate.open)
                opener.start()
            status = gateway.wait_exit(grace_s + (release_after_s or 0.0) + 30.0)
            result.exited_after_s = time.monotonic() - sent if status is not None else None
            result.exit_status = status
            clients.join(timeout=60.0)
            result.shutdown_logged = "Finished server process" in gateway.output()
        for outcome in outcomes:
            finished = outcome.status == 200 and (outcome.stream is None or (
                outcome.stream.well_formed and outcome.stream.terminal == "final"))
            result.completed += finished
            result.cut_off += not finished
            result.server_errors += outcome.status == 500 or outcome.server_error
            if not finished:
                kind = "stream" if outcome.stream is not None else "plain"
                result.cut_off_answers.append(f"{outcome.status} {outcome.code} {kind}")
            if not finished and len(result.problems) < 4:
                result.problems.append(f"{outcome.status} {outcome.transport_error or outcome.code} "
                                       f"{outcome.stream.problems if outcome.stream else ''}".strip())
    return result


def _refused(base_url: str) -> bool:
    try:
        httpx.get(f"{base_url}/health", timeout=2.0)
    except httpx.ConnectError:
        return True
    except httpx.TransportError:
        return False
    return False

