"""No key in the gateway's logs (debug level), its exported traces, its responses or its /metrics."""

from __future__ import annotations

from tests.reliability.secrets import run_secrets


def test_no_secret_appears_in_logs_traces_responses_or_metrics() -> None:
    result = run_secrets()
    assert all(result.controls.values()), result.controls  # each place searched really holds its data
    assert result.spans > 0
    assert result.statuses["wrong bearer key"] == 401 and result.statuses["answered stream"] == 200
    assert result.leaks == 0, result.occurrences
