"""Where the CLI connects, and how gateway error bodies become exit codes and one-line messages."""

from __future__ import annotations

import pytest

from clients.connection import DEFAULT_BASE_URL, gateway_root, resolve_connection
from clients.failures import ExitCode, GatewayFailure


@pytest.mark.parametrize(
    "url", ["http://gw:8000", "http://gw:8000/", "http://gw:8000/v1", "http://gw:8000/v1/", " http://gw:8000 "]
)
def test_gateway_root_accepts_sdk_style_urls(url: str) -> None:
    assert gateway_root(url) == "http://gw:8000"


def test_flags_beat_sqlgate_variables_which_beat_openai_variables() -> None:
    env = {"SQLGATE_URL": "http://sqlgate:1", "SQLGATE_API_KEY": "sk-sqlgate",
           "OPENAI_BASE_URL": "http://openai:2/v1", "OPENAI_API_KEY": "sk-openai"}
    assert resolve_connection("http://flag:3", "sk-flag", env).root_url == "http://flag:3"
    assert resolve_connection("http://flag:3", "sk-flag", env).api_key == "sk-flag"
    from_sqlgate = resolve_connection(None, None, env)
    assert (from_sqlgate.root_url, from_sqlgate.api_key) == ("http://sqlgate:1", "sk-sqlgate")
    openai_only = {"OPENAI_BASE_URL": "http://openai:2/v1", "OPENAI_API_KEY": "sk-openai"}
    from_openai = resolve_connection(None, None, openai_only)
    assert (from_openai.root_url, from_openai.v1_url, from_openai.api_key) == (
        "http://openai:2", "http://openai:2/v1", "sk-openai")
    # URL and key resolve independently
    mixed = resolve_connection(None, None, {"SQLGATE_URL": "http://sqlgate:1", "OPENAI_API_KEY": "sk-openai"})
    assert (mixed.root_url, mixed.api_key) == ("http://sqlgate:1", "sk-openai")


def test_defaults_without_anything_configured() -> None:
    connection = resolve_connection(None, None, {})
    assert connection.root_url == DEFAULT_BASE_URL
    assert connection.api_key is None and connection.auth_headers() == {}


@pytest.mark.parametrize(
    ("status", "error_type", "code", "exit_code"),
    [
        (401, "authentication_error", "invalid_api_key", ExitCode.AUTH),
        (403, "permission_error", "forbidden", ExitCode.AUTH),
        (429, "rate_limit_error", "rate_limit_exceeded", ExitCode.RATE_LIMITED),
        (422, "sql_check_error", "unsafe_sql", ExitCode.SQL_REJECTED),
        (422, "sql_check_error", "invalid_sql", ExitCode.SQL_REJECTED),
        (422, "invalid_request_error", "question_too_long", ExitCode.USAGE),
        (400, "invalid_request_error", "invalid_json", ExitCode.USAGE),
        (404, "invalid_request_error", "model_not_found", ExitCode.USAGE),
        (413, "invalid_request_error", "body_too_large", ExitCode.USAGE),
        (502, "upstream_error", "upstream_bad_response", ExitCode.UPSTREAM),
        (503, "upstream_error", "upstream_unavailable", ExitCode.UPSTREAM),
        (504, "upstream_error", "upstream_timeout", ExitCode.UPSTREAM),
        (500, "server_error", "internal_error", ExitCode.UPSTREAM),
    ],
)
def test_exit_code_follows_status_and_type(status: int, error_type: str, code: str, exit_code: ExitCode) -> None:
    body = {"error": {"message": "m", "type": error_type, "param": None, "code": code}}
    failure = GatewayFailure.from_body(status, body)
    assert failure.exit_code == exit_code
    # The SDK hands over the inside of the envelope: same result.
    assert GatewayFailure.from_body(status, body["error"]).exit_code == exit_code


def test_network_failure_is_an_upstream_exit() -> None:
    assert GatewayFailure("cannot reach the gateway").exit_code == ExitCode.UPSTREAM


def test_one_line_message_names_status_type_code_and_retry_after() -> None:
    body = {"error": {"message": "Rate limit\nreached.", "type": "rate_limit_error", "code": "rate_limit_exceeded"}}
    line = GatewayFailure.from_body(429, body, retry_after="17").one_line()
    assert line == "Rate limit reached.; retry after 17 s (HTTP 429, rate_limit_error, rate_limit_exceeded)"
    assert "\n" not in line


def test_rejected_sql_keeps_the_check_and_non_json_bodies_are_summarised() -> None:
    check = {"valid": False, "query": "DELETE FROM t"}
    failure = GatewayFailure.from_body(
        422, {"error": {"message": "rejected", "type": "sql_check_error", "code": "unsafe_sql", "check": check}})
    assert failure.check == check and failure.sql_rejected and failure.final
    garbage = GatewayFailure.from_body(502, "<html>Bad Gateway</html>")
    assert garbage.message == "<html>Bad Gateway</html>" and garbage.exit_code == ExitCode.UPSTREAM
    assert not garbage.final
    assert GatewayFailure.from_body(503, None).message == "HTTP 503 with no error body"
