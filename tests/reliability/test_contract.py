"""The OpenAPI contract under schemathesis (few examples, CI-sized) and the auth sweep over every protected route."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.reliability.contract import auth_sweep, fuzz, gateway_against
from tests.reliability.scripted import healthy_upstream, scripted_upstream

EXAMPLES = 15


@pytest.fixture(scope="module")
def healthy_gateway() -> Iterator[str]:
    with healthy_upstream() as upstream, gateway_against(upstream) as base_url:
        yield base_url


def test_every_operation_keeps_its_spec_and_never_fails_with_a_server_error(healthy_gateway: str) -> None:
    result = fuzz(healthy_gateway, max_examples=EXAMPLES, upstream="healthy fake", derandomize=True)
    assert len(result.operations) >= 7
    assert result.server_errors == 0, result.as_dict()
    # Answers the fake upstream made possible, so the 200 paths (plain and SSE) were really checked.
    assert result.statuses["POST /v1/completions 200"] >= 2, result.as_dict()
    assert result.violations == 0, result.violation_samples


def test_with_the_upstream_down_every_answer_is_a_declared_503() -> None:
    with scripted_upstream("down") as upstream, gateway_against(upstream) as base_url:
        result = fuzz(base_url, max_examples=3, upstream="down", derandomize=True)
    assert result.server_errors == 0, result.as_dict()
    for operation in ("POST /v1/completions", "POST /v1/chat/completions", "POST /v1/sql", "POST /generate"):
        assert result.statuses[f"{operation} 503"] >= 1, result.as_dict()
    assert result.statuses["GET /ready 503"] == 1, result.as_dict()
    # Other answers are the healthy run's business; here every 503 must be one the spec declares.
    assert result.violations_by_status[503] == 0, result.violation_samples


def test_every_protected_route_refuses_a_missing_or_wrong_key(healthy_gateway: str) -> None:
    sweep = auth_sweep(healthy_gateway)
    assert set(sweep.protected_operations) >= {"POST /v1/completions", "POST /v1/chat/completions",
                                               "GET /v1/models", "POST /v1/sql", "POST /generate"}
    assert sweep.failures == []
    assert sweep.refused_as_specified == sweep.probes == 5 * len(sweep.protected_operations)
