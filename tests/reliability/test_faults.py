"""Every upstream fault, once for a plain and once for a streaming request, through the gateway under uvicorn on
127.0.0.1 against the fake upstream: one defined answer (its time is reported, not asserted), no 500, no hang, no
connection left open, retries exactly as specified, and the next request after the upstream heals succeeds."""

from __future__ import annotations

import pytest

from tests.reliability.fault_matrix import (
    DISCONNECT,
    MODES,
    FaultCase,
    FaultLimits,
    Mode,
    catalogue,
    no_wait,
    run_fault,
)

# Retry waits are recorded, not slept; the slack covers scheduling on 2 shared cores.
LIMITS = FaultLimits(slack_s=2.0)
CASES = [*catalogue(LIMITS), DISCONNECT]


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
def test_fault_ends_in_its_one_defined_answer_and_the_gateway_recovers(case: FaultCase, mode: Mode) -> None:
    result = run_fault(case, mode, count=1, limits=LIMITS, sleep=no_wait())
    report = result.as_dict()
    assert result.problems == [], report
    assert result.handled == result.injected == 1, report
    assert result.unexpected_500s == 0 and result.hung == 0, report
    assert result.leaked_connections == 0, report
    assert result.accounted, report
    if case.availability == "up" and case is not DISCONNECT:
        assert result.upstream_requests == 1 + case.retries_per_request, report
        # sqlgate_upstream_retries_total must count the retries that were made, no more.
        assert result.retries == result.upstream_requests - 1, (
            f"the gateway counted {result.retries} retries; the upstream saw {result.upstream_requests} requests")
    assert result.retries == case.retries_per_request <= LIMITS.retry_attempts - 1, report
    assert result.recovered, report


@pytest.mark.parametrize("mode", MODES)
def test_retries_wait_what_retry_after_asks(mode: Mode) -> None:
    sleep = no_wait()
    case = next(case for case in CASES if case.name == "rate_limited_429")
    result = run_fault(case, mode, count=1, limits=LIMITS, sleep=sleep)
    assert result.passed, result.as_dict()
    assert sleep.waits == [float(LIMITS.retry_after_s)] * (LIMITS.retry_attempts - 1)


def test_connect_failures_back_off_with_jitter_within_the_budget() -> None:
    sleep = no_wait()
    case = next(case for case in CASES if case.name == "upstream_down")
    result = run_fault(case, "plain", count=1, limits=LIMITS, sleep=sleep)
    assert result.passed, result.as_dict()
    assert len(sleep.waits) == LIMITS.retry_attempts - 1
    assert all(0 < wait <= LIMITS.retry_budget_s for wait in sleep.waits)
    assert sum(sleep.waits) <= LIMITS.retry_budget_s
