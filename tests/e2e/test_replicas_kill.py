"""Two real vLLM CPU servers behind the gateway, one killed mid-run: only the requests in flight on it fail, and
every request started after it died is answered by the other (tests/e2e/replica_kill.py has the run itself)."""

from __future__ import annotations

from pathlib import Path

import pytest

from launch.vllm_server import RunningVllm
from tests.e2e.replica_kill import SECOND_SERVER_DEADLINE_S, run_kill
from tests.e2e.vllm_fixture import vllm_cpu_server

pytestmark = pytest.mark.e2e


def test_killing_one_replica_fails_only_its_requests_in_flight(tiny_sql_model: Path, vllm_server: RunningVllm,
                                                                tmp_path: Path) -> None:
    # The session's vLLM survives (other e2e tests use it after this one); a second one is started to be killed.
    with vllm_cpu_server(tiny_sql_model, tmp_path, startup_deadline_s=SECOND_SERVER_DEADLINE_S) as victim:
        result = run_kill(victim, vllm_server, requests=40, concurrency=4, kill_after=12)
    print({k: v for k, v in vars(result).items() if k != "outcomes"})
    assert len(result.outcomes) == 40
    # Whatever failed was in flight on the killed replica (or sent to it while it was dying), and failed as a lost
    # connection, not as "no replica available".
    assert result.failed <= result.failure_bound
    assert set(result.failed_codes) <= {"upstream_bad_response"}
    # Everything else is a correct answer, and everything started after the death went to the survivor.
    assert result.succeeded == 40 - result.failed
    assert result.started_after_death > 0 and result.started_after_death_failed == 0
    # Identical concurrent requests share one upstream call (single flight), so the survivor sees at most as many
    # calls as requests; the dead replica only ever refuses connections (each retried on the survivor at once).
    assert 0 < result.attempts_by_replica_after_death["r1"] <= result.started_after_death
