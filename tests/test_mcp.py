"""The MCP server, through the official SDK's own client, against a real gateway (uvicorn on 127.0.0.1, the fake
upstream as the model): over Streamable HTTP at /mcp, and over stdio through `sqlgate mcp` launched as a
subprocess. The tools are the gateway's pipeline: a refusal reaches the agent as a tool error with its code."""

from __future__ import annotations

import logging
import sys
import tempfile
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from typing import Any

import httpx
import httpx2
import orjson
import pytest
from mcp import Client, StdioServerParameters
from mcp.client.stdio import stdio_client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.exceptions import MCPError

from gateway.app import create_app
from gateway.observability.request_log import FIELDS_ATTRIBUTE, REQUEST_LOGGER
from gateway.sql_check import SUPPORTED_DIALECTS, in_menu_order
from tests import faults
from tests.conftest import API_KEY, make_settings
from tests.otlp_receiver import otlp_receiver
from tests.servers import FakeUpstream, RunningServer, fake_upstream, serve_in_thread
from tests.test_routes_policy import metric_value

REPO = Path(__file__).resolve().parents[1]
SCHEMA = "CREATE TABLE singer (Singer_ID int, Name text, Country text, Song_Name text)"
QUESTION = "How many singers do we have?"
TOOLS = {"generate_sql", "check_sql", "list_dialects"}
READ_TIMEOUT_S = 60.0


@contextmanager
def gateway_with(*upstream_faults: faults.Fault, **settings: Any) -> Iterator[tuple[FakeUpstream, RunningServer]]:
    with fake_upstream(*upstream_faults) as upstream:
        app = create_app(make_settings(upstream_url=upstream.base_url, **settings))
        with serve_in_thread(app) as server:
            yield upstream, server


@asynccontextmanager
async def mcp_over_http(server: RunningServer, key: str = API_KEY, mode: str = "auto") -> AsyncIterator[Client]:
    async with httpx2.AsyncClient(headers={"authorization": f"Bearer {key}"}) as http, Client(
        streamable_http_client(f"{server.base_url}/mcp", http_client=http), mode=mode,
        read_timeout_seconds=READ_TIMEOUT_S,
    ) as client:
        yield client


async def metrics_text(server: RunningServer) -> str:
    async with httpx.AsyncClient(base_url=server.base_url) as http:
        return (await http.get("/metrics")).text


def leaves(error: BaseException) -> list[BaseException]:
    """The exceptions inside (nested) exception groups, as anyio task groups raise them."""
    if isinstance(error, BaseExceptionGroup):
        return [leaf for inner in error.exceptions for leaf in leaves(inner)]
    return [error]


def tool_text(result: Any) -> str:
    assert len(result.content) == 1 and result.content[0].type == "text"
    return str(result.content[0].text)


@pytest.mark.parametrize("mode", ["auto", "legacy"])  # 2026-07-28 per-request envelope; 2025-11-25 handshake
async def test_an_mcp_client_lists_the_three_tools_and_gets_the_same_checked_query_as_v1_sql(mode: str) -> None:
    with gateway_with(faults.ok("SELECT count(*) FROM singer")) as (upstream, server):
        async with mcp_over_http(server, mode=mode) as client:
            listed = await client.list_tools()
            result = await client.call_tool("generate_sql", {"question": QUESTION, "schema": SCHEMA})
        async with httpx.AsyncClient(base_url=server.base_url, headers={"authorization": f"Bearer {API_KEY}"}) as http:
            plain = (await http.post("/v1/sql", json={"question": QUESTION, "schema": SCHEMA})).json()
    assert {tool.name for tool in listed.tools} == TOOLS
    generate = next(tool for tool in listed.tools if tool.name == "generate_sql")
    assert set(generate.input_schema["required"]) == {"question", "schema"}
    assert "dialect" in generate.input_schema["properties"]
    assert generate.output_schema is not None and "check" in generate.output_schema["properties"]
    assert result.is_error is False
    answer = result.structured_content
    assert answer is not None and answer["sql"] == "SELECT count(*) FROM singer" and answer["valid"] is True
    assert answer["check"]["compiled"] is True and answer["check"]["tables"] == ["singer"]
    # The same pipeline as /v1/sql: the second asking is its cache hit, with the same check object.
    assert plain["cached"] is True and answer["cached"] is False
    assert answer["check"] == plain["check"] and answer["sql"] == plain["sql"]
    assert orjson.loads(tool_text(result)) == answer
    assert len(upstream.requests) == 1


async def test_a_refusal_reaches_the_agent_as_a_tool_error_with_its_code_and_never_the_sql() -> None:
    with gateway_with(faults.ok("DELETE FROM singer")) as (_, server):
        async with mcp_over_http(server) as client:
            result = await client.call_tool("generate_sql", {"question": QUESTION, "schema": SCHEMA})
        metrics = await metrics_text(server)
    assert result.is_error is True
    assert tool_text(result).startswith("unsafe_sql: The generated SQL was rejected: DELETE statements are not")
    assert "DELETE FROM singer" not in tool_text(result)
    error = result.structured_content["error"]  # type: ignore[index]
    assert (error["code"], error["type"]) == ("unsafe_sql", "sql_check_error")
    assert error["check"]["statement_type"] == "delete"
    assert metric_value(metrics, "sqlgate_sql_refusals_total", code="unsafe_sql") == 1
    # Counted like an in-band stream error: with the status the refusal has on the HTTP routes.
    assert metric_value(metrics, "sqlgate_requests_total", route="mcp", status="422") == 1


@pytest.mark.parametrize(
    ("arguments", "code"),
    [
        ({"question": "x" * 501, "schema": SCHEMA}, "question_too_long"),
        ({"question": QUESTION, "schema": "  "}, "missing_schema"),
        ({"question": QUESTION, "schema": SCHEMA, "dialect": "klingon"}, "unsupported_dialect"),
        ({"question": "How many?<|im_end|>", "schema": SCHEMA}, "control_token"),
    ],
)
async def test_input_the_model_must_not_see_is_a_tool_error_before_any_upstream_call(arguments: dict[str, str],
                                                                                     code: str) -> None:
    with gateway_with(faults.ok()) as (upstream, server):
        async with mcp_over_http(server) as client:
            result = await client.call_tool("generate_sql", arguments)
        assert upstream.requests == []
    assert result.is_error is True and tool_text(result).startswith(f"{code}: ")
    assert result.structured_content["error"]["code"] == code  # type: ignore[index]


async def test_check_sql_checks_an_agents_own_sql_without_the_model() -> None:
    with gateway_with(faults.ok()) as (upstream, server):
        async with mcp_over_http(server) as client:
            good = await client.call_tool("check_sql", {"sql": "SELECT Name FROM singer WHERE Country = 'NL'",
                                                        "schema": SCHEMA})
            drop = await client.call_tool("check_sql", {"sql": "DROP TABLE singer", "schema": SCHEMA})
            unknown = await client.call_tool("check_sql", {"sql": "SELECT age FROM singer", "schema": SCHEMA})
            postgres = await client.call_tool("check_sql", {"sql": "SELECT \"Name\" FROM singer LIMIT 3",
                                                            "schema": SCHEMA, "dialect": "postgres"})
            bad_dialect = await client.call_tool("check_sql", {"sql": "SELECT 1", "schema": SCHEMA,
                                                               "dialect": "klingon"})
        assert upstream.requests == []
    assert good.is_error is False and good.structured_content["valid"] is True  # type: ignore[index]
    assert good.structured_content["check"]["compiled"] is True  # type: ignore[index]
    assert drop.is_error is False  # the tool worked: the SQL is what failed
    assert (drop.structured_content["valid"], drop.structured_content["error_code"]) == (False, "unsafe_sql")  # type: ignore[index]
    assert unknown.structured_content["error_code"] == "ungrounded_sql"  # type: ignore[index]
    assert unknown.structured_content["check"]["unknown_columns"] == ["age"]  # type: ignore[index]
    assert postgres.structured_content["valid"] is True  # type: ignore[index]
    assert postgres.structured_content["check"]["dialect"] == "postgres"  # type: ignore[index]
    assert bad_dialect.is_error is True and tool_text(bad_dialect).startswith("unsupported_dialect: ")


async def test_check_sql_refuses_an_agents_expensive_sql_before_duckdb_folds_it_and_says_how_far_it_verified() -> None:
    # DuckDB folds constants while preparing: this used to allocate the 2 GB string inside the gateway.
    with gateway_with(faults.ok()) as (upstream, server):
        async with mcp_over_http(server) as client:
            hostile = await client.call_tool("check_sql", {"sql": "SELECT lpad('x', 2000000000, 'y')",
                                                           "schema": SCHEMA, "dialect": "duckdb"})
            good = await client.call_tool("check_sql", {"sql": "SELECT Name FROM singer", "schema": SCHEMA,
                                                        "dialect": "duckdb"})
        assert upstream.requests == []
    assert hostile.structured_content["error_code"] == "expensive_sql"  # type: ignore[index]
    assert hostile.structured_content["check"]["compiled"] is None  # type: ignore[index]
    assert good.structured_content["check"]["verified"] == "compiled"  # type: ignore[index]


async def test_list_dialects_names_what_dialect_accepts() -> None:
    with gateway_with(faults.ok(), sql_dialect="postgres") as (_, server):
        async with mcp_over_http(server) as client:
            result = await client.call_tool("list_dialects", {})
    listed = result.structured_content
    assert listed is not None and listed["default"] == "postgres"
    assert [d["name"] for d in listed["dialects"]] == in_menu_order(SUPPORTED_DIALECTS)
    assert {"name": "postgres", "label": "PostgreSQL"} in listed["dialects"]


async def test_a_bad_key_is_refused_before_anything_is_listed() -> None:
    with gateway_with(faults.ok()) as (upstream, server):
        with pytest.raises(BaseException) as refused:  # anyio wraps it in groups: unwrapped below
            async with mcp_over_http(server, key="sk-wrong-key-000000000000") as client:
                await client.list_tools()
        async with httpx.AsyncClient(base_url=server.base_url) as http:
            raw = await http.post("/mcp", headers={"accept": "application/json, text/event-stream"},
                                  json={"jsonrpc": "2.0", "id": 1, "method": "tools/list"})
        metrics = await metrics_text(server)
        assert upstream.requests == []
    assert [type(leaf) for leaf in leaves(refused.value)] == [MCPError]
    assert raw.status_code == 401 and raw.json()["error"]["code"] == "missing_api_key"
    assert metric_value(metrics, "sqlgate_rejected_requests_total", reason="auth") >= 2


async def test_post_mcp_answers_itself_for_the_2025_06_18_handshake() -> None:
    headers = {"authorization": f"Bearer {API_KEY}", "accept": "application/json, text/event-stream"}
    initialize = {"jsonrpc": "2.0", "id": 1, "method": "initialize",
                  "params": {"protocolVersion": "2025-06-18", "capabilities": {},
                             "clientInfo": {"name": "a-2025-agent", "version": "1"}}}
    with gateway_with(faults.ok()) as (_, server):
        async with httpx.AsyncClient(base_url=server.base_url, headers=headers) as http:
            opened = await http.post("/mcp", json=initialize)  # httpx follows no redirect unless asked: none needed
            listed = await http.post("/mcp", json={"jsonrpc": "2.0", "id": 2, "method": "tools/list"},
                                     headers={"mcp-protocol-version": "2025-06-18"})
    assert opened.status_code == 200, opened.text
    assert opened.json()["result"]["protocolVersion"] == "2025-06-18"
    assert opened.json()["result"]["serverInfo"]["name"] == "sqlgate"
    assert {tool["name"] for tool in listed.json()["result"]["tools"]} == TOOLS


async def test_mcp_messages_count_against_the_keys_rate_limit_and_are_logged_like_any_request(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with gateway_with(faults.ok(), rate_limit_per_minute=3) as (_, server):
        with caplog.at_level(logging.INFO, logger=REQUEST_LOGGER):
            async with mcp_over_http(server, mode="2026-07-28") as client:  # one POST per message, no handshake
                await client.list_tools()
                await client.call_tool("list_dialects", {})
                await client.call_tool("list_dialects", {})
                with pytest.raises(MCPError):
                    await client.call_tool("list_dialects", {})
        metrics = await metrics_text(server)
    lines = [getattr(r, FIELDS_ATTRIBUTE) for r in caplog.records if r.name == REQUEST_LOGGER]
    assert [(line["route"], line["status"], line["key_name"]) for line in lines] == [
        ("mcp", 200, "tester"), ("mcp", 200, "tester"), ("mcp", 200, "tester"), ("mcp", 429, "tester")]
    assert metric_value(metrics, "sqlgate_requests_total", route="mcp", status="429") == 1
    assert metric_value(metrics, "sqlgate_rejected_requests_total", reason="rate_limit") == 1


def sqlgate_mcp(server: RunningServer, key: str) -> StdioServerParameters:
    """`sqlgate mcp` as an agent's configuration would start it (`python -m clients` is the `sqlgate` script)."""
    return StdioServerParameters(command=sys.executable, args=["-m", "clients", "mcp", "--url", server.base_url,
                                                               "--key", key], cwd=str(REPO))


async def test_over_stdio_sqlgate_mcp_lists_the_tools_answers_and_refuses_through_the_gateway() -> None:
    with gateway_with(faults.ok("SELECT count(*) FROM singer"), faults.ok("DELETE FROM singer")) as (_, server):
        with tempfile.TemporaryFile("w+") as errlog:
            async with Client(stdio_client(sqlgate_mcp(server, API_KEY), errlog=errlog),
                              read_timeout_seconds=READ_TIMEOUT_S) as client:
                listed = await client.list_tools()
                answered = await client.call_tool("generate_sql", {"question": QUESTION, "schema": SCHEMA})
                refused = await client.call_tool("generate_sql", {"question": "Delete them", "schema": SCHEMA})
        metrics = await metrics_text(server)
    assert {tool.name for tool in listed.tools} == TOOLS
    assert answered.is_error is False
    assert answered.structured_content["sql"] == "SELECT count(*) FROM singer"  # type: ignore[index]
    assert refused.is_error is True and tool_text(refused).startswith("unsafe_sql: ")
    assert metric_value(metrics, "sqlgate_requests_total", route="mcp", status="422") == 1


async def test_over_stdio_a_bad_key_stops_sqlgate_mcp_with_the_gateways_reason() -> None:
    with gateway_with(faults.ok()) as (upstream, server):
        with tempfile.TemporaryFile("w+") as errlog:
            with pytest.raises(BaseException) as refused:  # unwrapped below
                async with Client(stdio_client(sqlgate_mcp(server, "sk-wrong-key-000000000000"), errlog=errlog),
                                  read_timeout_seconds=READ_TIMEOUT_S) as client:
                    await client.list_tools()
            errlog.seek(0)
            stderr = errlog.read()
        assert upstream.requests == []
    assert [type(leaf) for leaf in leaves(refused.value)] == [MCPError]
    assert "Incorrect API key provided. (HTTP 401, authentication_error, invalid_api_key)" in stderr


async def test_a_tool_call_is_traced_like_any_route() -> None:
    with otlp_receiver() as receiver:
        with gateway_with(faults.ok("SELECT count(*) FROM singer"), langfuse_public_key=receiver.public_key,
                          langfuse_secret_key=receiver.secret_key, langfuse_base_url=receiver.base_url) as (_, server):
            async with mcp_over_http(server) as client:
                result = await client.call_tool("generate_sql", {"question": QUESTION, "schema": SCHEMA})
        # The server's shutdown flushed the exporter.
        roots = receiver.by_type("span")
        generation = receiver.by_type("generation")
        guardrail = receiver.by_type("guardrail")
    assert result.is_error is False
    assert [(root.name, root.attributes["user.id"]) for root in roots] == [("mcp", "tester")]
    assert len(generation) == 1 and len(guardrail) == 1
    assert generation[0].trace_id == roots[0].trace_id == guardrail[0].trace_id
    assert generation[0].attributes["langfuse.observation.output"] == "SELECT count(*) FROM singer"


async def test_what_is_not_an_mcp_post_is_refused_with_a_4xx_never_hangs_or_fails() -> None:
    headers = {"authorization": f"Bearer {API_KEY}", "accept": "application/json, text/event-stream"}
    with gateway_with(faults.ok()) as (upstream, server):
        async with httpx.AsyncClient(base_url=server.base_url, headers=headers, timeout=30) as http:
            # A stateless server has nothing to push: no GET stream that would stay open forever.
            listen = await http.get("/mcp")
            parse = await http.post("/mcp", content=b"{not json", headers={"content-type": "application/json"})
            html = await http.post("/mcp", json={"jsonrpc": "2.0", "id": 1, "method": "tools/list"},
                                   headers={"accept": "text/html"})
            unknown = await http.post("/mcp", json={"jsonrpc": "2.0", "id": 1, "method": "tools/call",
                                                    "params": {"name": "drop_tables", "arguments": {}}})
        assert upstream.requests == []
    assert listen.status_code == 405 and listen.json()["error"]["code"] == "method_not_allowed"
    assert parse.status_code == 400 and parse.json()["error"]["code"] == -32700  # JSON-RPC's parse error
    assert html.status_code == 406
    assert unknown.status_code == 200 and unknown.json()["result"]["isError"] is True
