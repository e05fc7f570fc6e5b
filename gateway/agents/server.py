"""The MCP server of the gateway, built with the official `mcp` SDK, served over Streamable HTTP at `/mcp`.

Stateless and JSON: every MCP message is one `POST /mcp` answered with one JSON body, no session to keep. So the
gateway's middleware sees each message as a request like any other (API key as a bearer token, the key's rate
limit, body cap, metrics, the log line and the trace), and any worker or replica can answer any message. Agents
speaking protocol version 2025-06-18 or 2025-11-25 (the initialize handshake) and 2026-07-28 (per-request
envelope) are answered alike.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Annotated

from mcp.server.mcpserver import Context, MCPServer
from mcp.server.transport_security import TransportSecuritySettings
from mcp_types import CallToolResult, ToolAnnotations
from pydantic import Field
from starlette.types import Receive, Scope, Send

from gateway.agents import tools
from gateway.request_record import RequestRecord
from gateway.routes.protocol import SqlResponseBody
from gateway.state import AppState

MCP_PATH = "/mcp"
INSTRUCTIONS = (
    "sqlgate turns a question about a database into one SQL query that has been checked: read-only, one statement, "
    "every table and column present in the schema you send, compiled against that schema, in the dialect you ask "
    "for. Send the CREATE TABLE statements of the tables the question is about, or the whole database's: a schema "
    "too big for the model is narrowed to the tables the question needs (check.schema_scope says which). A query "
    "that fails the check is "
    "never returned: the tool answers an error whose text starts with the reason's code. Use check_sql to check "
    "SQL you wrote yourself before running it."
)

Question = Annotated[str, Field(description="The question in plain language, e.g. 'How many singers are there?'")]
Schema = Annotated[str, Field(description="The CREATE TABLE statements of the tables the question is about.")]
Dialect = Annotated[str | None, Field(description="SQL dialect of the answer (see list_dialects); default: the "
                                                  "gateway's, usually sqlite.")]
Sql = Annotated[str, Field(description="One SQL statement to check.")]
Tables = Annotated[list[str] | None, Field(description="Tables to always show the model, when the schema is too big "
                                                       "to send whole (names as the schema writes them).")]


def _record(ctx: Context) -> RequestRecord:
    """The HTTP request's record (the middleware's), which the pipeline fills in like any route's."""
    request = ctx.request_context.request
    record = getattr(getattr(request, "state", None), "record", None)
    if isinstance(record, RequestRecord):
        return record
    return RequestRecord(request_id=uuid.uuid4().hex, route="mcp", method="TOOL")  # not over HTTP: nothing to log


def build_mcp_server(state: AppState) -> MCPServer:
    """The three tools on `state`'s pipeline; `.session_manager` serves them (enter its `run()` in the lifespan)."""
    server = MCPServer("sqlgate", title="sqlgate text-to-SQL", instructions=INSTRUCTIONS, version="0.1.0")

    @server.tool(
        name="generate_sql",
        title="Generate checked SQL",
        description="Turn a question and the CREATE TABLE statements it is about into one SQL query that passed "
        "the gateway's check (read-only, grounded in the schema, compiled). The result is the /v1/sql answer: "
        "`sql` and its `check`. A refusal is a tool error whose text starts with its code (invalid_sql, "
        "unsafe_sql, ungrounded_sql, question_too_long, ...).",
        annotations=ToolAnnotations(read_only_hint=True, destructive_hint=False, idempotent_hint=True,
                                    open_world_hint=False),
    )
    async def generate_sql(question: Question, schema: Schema, ctx: Context, dialect: Dialect = None,
                           tables: Tables = None) -> Annotated[CallToolResult, SqlResponseBody]:
        return await tools.generate(state, _record(ctx), question=question, schema=schema, dialect=dialect,
                                    tables=tables)

    @server.tool(
        name="check_sql",
        title="Check SQL",
        description="Check SQL you wrote yourself against the schema, without generating anything: one "
        "statement, read-only, every table and column in the schema, compiles. Returns `valid`, `error_code` "
        "and the `check` object with the problems found.",
        annotations=ToolAnnotations(read_only_hint=True, destructive_hint=False, idempotent_hint=True,
                                    open_world_hint=False),
    )
    async def check_sql(sql: Sql, schema: Schema, ctx: Context, dialect: Dialect = None) -> CallToolResult:
        return tools.check(state, _record(ctx), sql=sql, schema=schema, dialect=dialect)

    @server.tool(
        name="list_dialects",
        title="List SQL dialects",
        description="The SQL dialects generate_sql and check_sql accept, and the gateway's default.",
        annotations=ToolAnnotations(read_only_hint=True, destructive_hint=False, idempotent_hint=True,
                                    open_world_hint=False),
    )
    async def list_dialects() -> CallToolResult:
        return tools.dialects(state)

    server.streamable_http_app(
        streamable_http_path=MCP_PATH,
        stateless_http=True,
        json_response=True,
        max_request_body_size=state.settings.max_body_bytes,
        # Host/Origin checks guard servers that trust whoever reaches them; every message here needs an API key,
        # which a page rebound to the gateway's address does not have. Behind a proxy the Host varies anyway.
        transport_security=TransportSecuritySettings(enable_dns_rebinding_protection=False),
    )
    return server


class McpEndpoint:
    """The ASGI app at `/mcp`: each request goes to the session manager the app's lifespan started."""

    def __init__(self, state: Callable[[], AppState]) -> None:
        self._state = state

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self._state().mcp.handle_request(scope, receive, send)
