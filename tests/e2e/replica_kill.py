"""Two real vLLM CPU servers behind one gateway; one is killed (SIGKILL, its whole process group) mid-run.

Claim under test (issue 14, section 3): no request fails except those in flight on the killed replica at that
moment, and every request started after it died is answered by the other one.

    .venv/bin/python -m tests.e2e.replica_kill --out reports/replicas_kill.json

runs it outside pytest (starts both vLLMs, ~2-4 minutes on 2 shared cores); tests/e2e/test_replicas_kill.py runs
the same function under pytest.
"""

from __future__ import annotations

import argparse
import json
import os
import queue
import signal
import sys
import tempfile
import threading
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import httpx

from gateway.app import create_app
from launch.tiny_model import EMPLOYEE_EXAMPLE, JOIN_EXAMPLE, SINGER_EXAMPLE
from launch.vllm_server import RunningVllm
from tests.conftest import API_KEY, make_settings
from tests.servers import serve_in_thread, wait_for

EXAMPLES = [SINGER_EXAMPLE, EMPLOYEE_EXAMPLE, JOIN_EXAMPLE]
REQUEST_TIMEOUT_S = 120.0
# A second vLLM starts while the first one's engine busy-waits on the same cores: on 2 shared cores it has taken
# 4-5 minutes, at the edge of the fixture's usual deadline.
SECOND_SERVER_DEADLINE_S = 720.0


@dataclass
class Outcome:
    index: int
    status: int
    code: str | None
    correct: bool
    started_after_death: bool


@dataclass
class KillResult:
    requests: int
    concurrency: int
    kill_after: int
    # The gateway's own count of attempts on the killed replica just before the kill, and how many more were sent
    # to it until its process was gone (the window in which it still accepted work).
    in_flight_on_killed_at_kill: int
    attempts_on_killed_during_kill: int
    failed: int
    failed_codes: list[str]
    succeeded: int
    started_after_death: int
    started_after_death_failed: int
    attempts_by_replica_after_death: dict[str, int]
    outcomes: list[dict[str, Any]] = field(default_factory=list)

    @property
    def failure_bound(self) -> int:
        return self.in_flight_on_killed_at_kill + self.attempts_on_killed_during_kill


def _attempts(app: Any) -> dict[str, tuple[int, int]]:
    return {r.name: (r.in_flight, r.attempts) for r in app.state.sqlgate.upstream.replicas.snapshot()}


def run_kill(victim: RunningVllm, survivor: RunningVllm, *, requests: int = 40, concurrency: int = 4,
             kill_after: int = 12) -> KillResult:
    """Drive `requests` through a gateway over both servers, SIGKILL `victim` after `kill_after` answers."""
    settings = make_settings(upstream_url=f"{victim.base_url},{survivor.base_url}", upstream_model=victim.model,
                             cache_enabled=False, rate_limit_per_minute=0, upstream_read_timeout_s=60.0,
                             upstream_retry_budget_s=10.0)
    app = create_app(settings)
    jobs: queue.Queue[int] = queue.Queue()
    for index in range(requests):
        jobs.put(index)
    outcomes: list[Outcome] = []
    lock = threading.Lock()
    dead = threading.Event()

    def worker(base_url: str) -> None:
        with httpx.Client(base_url=base_url, headers={"authorization": f"Bearer {API_KEY}"},
                          timeout=REQUEST_TIMEOUT_S) as http:
            while True:
                # Past `kill_after` answers, new requests wait for the death to be confirmed: what was in flight then
                # meets the kill, and what starts afterwards must all go to the survivor (on a quiet machine the
                # rest of the jobs would otherwise finish before the kill has been confirmed).
                with lock:
                    reached = len(outcomes) >= kill_after
                if reached:
                    dead.wait(timeout=600.0)
                try:
                    index = jobs.get_nowait()
                except queue.Empty:
                    return
                example = EXAMPLES[index % len(EXAMPLES)]
                after = dead.is_set()
                response = http.post("/v1/completions", json={
                    "model": settings.model_id, "prompt": example["question"], "schema": example["context"]})
                body = response.json()
                correct = response.status_code == 200 and body["choices"][0]["text"] == example["answer"]
                code = None if response.status_code == 200 else body["error"]["code"]
                with lock:
                    outcomes.append(Outcome(index, response.status_code, code, correct, after))

    with serve_in_thread(app) as gateway:
        threads = [threading.Thread(target=worker, args=(gateway.base_url,), daemon=True)
                   for _ in range(concurrency)]
        for thread in threads:
            thread.start()
        wait_for(lambda: len(outcomes) >= kill_after, f"{kill_after} answers", deadline_s=600.0)
        before = _attempts(app)["r0"]
        os.killpg(victim.process.pid, signal.SIGKILL)  # the whole group: API server and engine core together
        victim.process.wait(timeout=60)
        wait_for(lambda: not _group_alive(victim.process.pid), "the killed group to be gone", deadline_s=60.0)
        after_kill = _attempts(app)["r0"]
        dead.set()
        at_death = {name: attempts for name, (_, attempts) in _attempts(app).items()}
        for thread in threads:
            thread.join(timeout=600.0)
        final = {name: attempts for name, (_, attempts) in _attempts(app).items()}

    failed = [o for o in outcomes if o.status != 200]
    late = [o for o in outcomes if o.started_after_death]
    return KillResult(
        requests=requests, concurrency=concurrency, kill_after=kill_after,
        in_flight_on_killed_at_kill=before[0],
        attempts_on_killed_during_kill=after_kill[1] - before[1],
        failed=len(failed), failed_codes=sorted(o.code or "" for o in failed),
        succeeded=sum(o.correct for o in outcomes),
        started_after_death=len(late), started_after_death_failed=sum(o.status != 200 for o in late),
        attempts_by_replica_after_death={name: final[name] - at_death[name] for name in final},
        outcomes=[asdict(o) for o in sorted(outcomes, key=lambda o: o.index)],
    )


def _group_alive(group_id: int) -> bool:
    try:
        os.killpg(group_id, 0)
    except ProcessLookupError:
        return False
    return True


@contextmanager
def two_servers(model_dir: Path, log_dir: Path) -> Iterator[tuple[RunningVllm, RunningVllm]]:
    from tests.e2e.vllm_fixture import vllm_cpu_server

    with ExitStack() as stack:
        first = stack.enter_context(vllm_cpu_server(model_dir, log_dir / "a"))
        second = stack.enter_context(vllm_cpu_server(model_dir, log_dir / "b",
                                                     startup_deadline_s=SECOND_SERVER_DEADLINE_S))
        yield first, second


def main() -> int:
    from tests.e2e.vllm_fixture import build_tiny_model

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=Path("reports/replicas_kill.json"))
    parser.add_argument("--requests", type=int, default=40)
    parser.add_argument("--concurrency", type=int, default=4)
    args = parser.parse_args()
    model_dir = build_tiny_model()
    with tempfile.TemporaryDirectory(prefix="sqlgate-kill-") as logs, two_servers(model_dir, Path(logs)) as (a, b):
        result = run_kill(a, b, requests=args.requests, concurrency=args.concurrency)
    summary = {**asdict(result), "failure_bound": result.failure_bound}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(summary, indent=2) + "\n")
    print(json.dumps({k: v for k, v in summary.items() if k != "outcomes"}, indent=2))
    return 0 if result.failed <= result.failure_bound and result.started_after_death_failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
