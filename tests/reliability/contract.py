"""The gateway's OpenAPI contract, fuzzed with schemathesis over every operation (valid and invalid input, with the
auth header), plus a sweep showing that every protected route refuses a missing or wrong key."""

from __future__ import annotations

import contextlib
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from hypothesis.reporting import with_reporter
from schemathesis import GenerationMode
from schemathesis.core.result import Ok
from schemathesis.specs.openapi import checks as openapi_checks

from gateway.app import create_app
from gateway.middleware import PROTECTED_PREFIXES
from tests.conftest import API_KEY, make_settings
from tests.reliability.observe import error_code_of
from tests.reliability.scripted import ScriptedUpstream, healthy_upstream, scripted_upstream
from tests.servers import serve_in_thread

AUTH = {"authorization": f"Bearer {API_KEY}"}
WRONG_KEY = "sk-sqlgate-wrong-key-0123456789"
# Status codes the contract defines for upstream faults; any other 5xx is a server error.
UPSTREAM_STATUSES = frozenset({502, 503, 504})
CHECKS = [
    openapi_checks.status_code_conformance,
    openapi_checks.content_type_conformance,
    openapi_checks.response_headers_conformance,
    openapi_checks.response_schema_conformance,
    openapi_checks.negative_data_rejection,
]
# Not run: `positive_data_acceptance` (a schema-valid body can still break a documented cap, e.g. an empty or
# 600-character question, which must be 422: the caps are settings, not schema), `max_response_time`.

VALID_BODIES: dict[str, list[dict[str, Any]]] = {
    "POST /v1/completions": [
        {"prompt": "How many singers are there?", "schema": "CREATE TABLE singer (Singer_ID int, Name text)"},
        {"prompt": "How many singers are there?", "schema": "CREATE TABLE singer (Singer_ID int, Name text)",
         "stream": True, "stream_options": {"include_usage": True}},
    ],
    "POST /v1/chat/completions": [
        {"messages": [{"role": "user", "content": "How many singers are there?"}],
         "schema": "CREATE TABLE singer (Singer_ID int, Name text)"},
        {"messages": [{"role": "user", "content": "How many singers are there?"}],
         "schema": "CREATE TABLE singer (Singer_ID int, Name text)", "stream": True},
    ],
    "POST /v1/sql": [{"question": "How many singers are there?",
                      "schema": "CREATE TABLE singer (Singer_ID int, Name text)"}],
    "POST /generate": [{"question": "How many singers are there?",
                        "context": "CREATE TABLE singer (Singer_ID int, Name text)"}],
}


@dataclass
class ContractResult:
    upstream: str
    operations: list[str] = field(default_factory=list)
    cases: int = 0
    statuses: Counter[str] = field(default_factory=Counter)
    server_errors: int = 0
    violations: int = 0
    violations_by_status: Counter[int] = field(default_factory=Counter)
    violation_samples: list[str] = field(default_factory=list)

    def note(self, label: str, status: int, failure: str | None) -> None:
        self.cases += 1
        self.statuses[f"{label} {status}"] += 1
        if status >= 500 and status not in UPSTREAM_STATUSES:
            self.server_errors += 1
        if failure is not None:
            self.violations += 1
            self.violations_by_status[status] += 1
            first_line = next((line for line in failure.splitlines() if line.startswith("- ")), failure[:200])
            sample = f"{label} -> {status}: {first_line.strip()}"
            if sample not in self.violation_samples and len(self.violation_samples) < 10:
                self.violation_samples.append(sample)

    def as_dict(self) -> dict[str, Any]:
        return {"upstream": self.upstream, "operations": self.operations, "cases": self.cases,
                "server_errors": self.server_errors, "spec_violations": self.violations,
                "violation_samples": self.violation_samples, "statuses": dict(sorted(self.statuses.items()))}


def _validate(case: Any, response: Any) -> str | None:
    try:
        case.validate_response(response, checks=CHECKS, headers=AUTH)
    except BaseException as failure:  # schemathesis raises a FailureGroup (a BaseExceptionGroup)
        if isinstance(failure, KeyboardInterrupt | SystemExit):
            raise
        return str(failure)
    return None


def fuzz(base_url: str, *, max_examples: int, upstream: str, derandomize: bool = False) -> ContractResult:
    """Every operation of /openapi.json, valid and invalid input, `max_examples` each, plus the fixed valid bodies
    (plain and streamed), all with the auth header. `derandomize`: the same examples every run (CI)."""
    schema = schemathesis.openapi.from_url(f"{base_url}/openapi.json", headers=AUTH)
    result = ContractResult(upstream=upstream)
    for loaded in schema.get_all_operations():
        if not isinstance(loaded, Ok):
            raise AssertionError(f"the gateway's OpenAPI spec has an invalid operation: {loaded.err()}")
        operation = loaded.ok()
        label = operation.label
        result.operations.append(label)
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            _fuzz_operation(operation, mode, base_url, result, max_examples=max_examples, derandomize=derandomize)
        for body in VALID_BODIES.get(label, []):
            case = operation.Case(body=body, media_type="application/json")
            response = case.call(base_url=base_url, headers=AUTH, timeout=30)
            result.note(label, response.status_code, _validate(case, response))
    return result


def _fuzz_operation(operation: Any, mode: GenerationMode, base_url: str, result: ContractResult, *,
                    max_examples: int, derandomize: bool) -> None:
    label = operation.label

    @settings(max_examples=max_examples, deadline=None, database=None, phases=[Phase.generate],
              derandomize=derandomize, suppress_health_check=list(HealthCheck))
    @given(case=operation.as_strategy(generation_mode=mode))
    def exercise(case: Any) -> None:
        response = case.call(base_url=base_url, headers=AUTH, timeout=30)
        result.note(label, response.status_code, _validate(case, response))

    # An operation without inputs has no invalid ones; hypothesis would also print a reproduction hint.
    with contextlib.suppress(Unsatisfiable), with_reporter(lambda _: None):
        exercise()


@dataclass
class AuthSweep:
    protected_operations: list[str] = field(default_factory=list)
    probes: int = 0
    refused_as_specified: int = 0
    failures: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {"protected_operations": self.protected_operations, "probes": self.probes,
                "refused_as_specified": self.refused_as_specified, "failures": self.failures}


def auth_sweep(base_url: str) -> AuthSweep:
    """Every protected operation, with no key, a wrong Bearer key, a wrong X-API-Key and a malformed header: 401
    with `missing_api_key` or `invalid_api_key`, whatever the body."""
    spec = httpx.get(f"{base_url}/openapi.json", headers=AUTH, timeout=10).json()
    sweep = AuthSweep()
    probes = [
        ({}, "missing_api_key"),
        ({"authorization": f"Bearer {WRONG_KEY}"}, "invalid_api_key"),
        ({"x-api-key": WRONG_KEY}, "invalid_api_key"),
        ({"authorization": f"Basic {WRONG_KEY}"}, None),
        ({"authorization": f"Bearer {API_KEY[:-1]}"}, "invalid_api_key"),
    ]
    with httpx.Client(base_url=base_url, timeout=10) as client:
        for path, operations in spec["paths"].items():
            if not path.startswith(PROTECTED_PREFIXES):
                continue
            for method in operations:
                label = f"{method.upper()} {path}"
                sweep.protected_operations.append(label)
                body = VALID_BODIES.get(label, [None])[0]
                for headers, code in probes:
                    response = client.request(method, path, json=body, headers=headers)
                    sweep.probes += 1
                    got = error_code_of(response.content)
                    accepted = {"missing_api_key", "invalid_api_key"} if code is None else {code}
                    if response.status_code == 401 and got in accepted:
                        sweep.refused_as_specified += 1
                    else:
                        sweep.failures.append(f"{label} with {sorted(headers)}: {response.status_code} {got}")
    return sweep


@contextlib.contextmanager
def gateway_against(upstream: ScriptedUpstream) -> Iterator[str]:
    settings_ = make_settings(upstream_url=upstream.base_url, rate_limit_per_minute=0,
                              upstream_connect_timeout_s=0.5, upstream_read_timeout_s=5.0,
                              upstream_retry_budget_s=0.5)
    with serve_in_thread(create_app(settings_)) as server:
        yield server.base_url


def run_contract(*, max_examples: int, down_examples: int) -> dict[str, Any]:
    """The fuzz against a healthy fake upstream, the auth sweep, and the fuzz again with the upstream down."""
    with healthy_upstream() as upstream, gateway_against(upstream) as base_url:
        healthy = fuzz(base_url, max_examples=max_examples, upstream="healthy fake")
        sweep = auth_sweep(base_url)
    with scripted_upstream("down") as upstream, gateway_against(upstream) as base_url:
        down = fuzz(base_url, max_examples=down_examples, upstream="down")
    return {"healthy": healthy.as_dict(), "upstream_down": down.as_dict(), "auth": sweep.as_dict(),
            "checks": [check.__name__ for check in CHECKS]}
