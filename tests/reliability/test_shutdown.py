"""SIGTERM to `python -m gateway` with requests in flight: it stops accepting at once, finishes what is in flight
(slow but finite upstream) and exits 0; with a stuck upstream it ends them at SQLGATE_SHUTDOWN_GRACE_S and exits.
`make down` leaving no process behind is tests/test_stack.py's job."""

from __future__ import annotations

import pytest

from tests.reliability.shutdown import ShutdownResult, run_shutdown

IN_FLIGHT = 4  # half of them streams


@pytest.fixture(scope="module")
def finite() -> ShutdownResult:
    # The upstream answers as soon as the test has seen the gateway refuse new connections.
    return run_shutdown(grace_s=10.0, in_flight=IN_FLIGHT, release_after_s=0.0)


@pytest.fixture(scope="module")
def stuck() -> ShutdownResult:
    return run_shutdown(grace_s=1.0, in_flight=IN_FLIGHT, release_after_s=None)


def test_sigterm_stops_new_connections_at_once(finite: ShutdownResult) -> None:
    # "At once" as the gateway decides it: new connections are refused while every request is still held in the
    # upstream (it is released only after this refusal was seen). How many seconds that took is a report figure.
    assert finite.stopped_accepting_s is not None and finite.refused_new_request, finite.as_dict()


def test_requests_in_flight_finish_completely(finite: ShutdownResult) -> None:
    assert finite.completed == IN_FLIGHT, finite.as_dict()
    assert finite.server_errors == 0


def test_the_process_exits_without_waiting_for_a_stuck_upstream(finite: ShutdownResult, stuck: ShutdownResult
                                                                  ) -> None:
    # Both exit; the stuck upstream never answers, so the stuck run could only exit by ending its requests at the
    # grace period (they all got server_shutting_down, below). Seconds taken are reported (bound_s), not asserted.
    for result in (finite, stuck):
        assert result.exited_after_s is not None and result.exit_status is not None, result.as_dict()
    assert stuck.cut_off == IN_FLIGHT and finite.completed == IN_FLIGHT


def test_a_graceful_shutdown_exits_with_status_0(finite: ShutdownResult) -> None:
    # uvicorn re-raises the SIGTERM it handled once it has shut down, so without care the status is -15.
    assert finite.exit_status == 0, finite.as_dict()


def test_requests_cut_off_by_the_grace_period_get_no_bare_500(stuck: ShutdownResult) -> None:
    assert stuck.cut_off == IN_FLIGHT, stuck.as_dict()
    assert stuck.server_errors == 0, stuck.problems
    # Plain requests get the 503 a client retries; streams, which had started (200), end with the same error
    # in-band before [DONE].
    assert sorted(stuck.cut_off_answers) == sorted(
        ["503 server_shutting_down plain", "200 server_shutting_down stream"] * (IN_FLIGHT // 2)), stuck.as_dict()


def test_uvicorn_shutdown_lines_reach_the_gateway_log(finite: ShutdownResult) -> None:
    assert finite.shutdown_logged, "uvicorn's 'Finished server process' line is missing from the gateway's output"
