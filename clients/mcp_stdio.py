"""`sqlgate mcp`: an MCP server on stdio for local agents, answering through a gateway's `/mcp` with an API key.

Local agents (desktop assistants, IDEs) start MCP servers as subprocesses and speak to them over stdin/stdout.
This one holds no tools of its own: it lists and calls the gateway's (`generate_sql`, `check_sql`,
`list_dialects`) over Streamable HTTP, with the key as a bearer token, so the answers, the refusals (tool errors
whose text starts with the code) and the key's rate limit are exactly the gateway's.

Before serving it asks the gateway once for `/v1/models` with the key: a wrong key or an unreachable gateway stops
it with a one-line reason on stderr (which agents show in their MCP logs) instead of a server with no tools.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx2
from mcp import Client
from mcp.client.streamable_http import streamable_http_client
from mcp.server import Server, ServerRequestContext
from mcp.server.stdio import stdio_server
from mcp.shared.exceptions import MCPError
from mcp_types import (
    INTERNAL_ERROR,
    CallToolRequestParams,
    CallToolResult,
    ListToolsResult,
    PaginatedRequestParams,
    TextContent,
)

from clients.connection import DEFAULT_CONNECT_TIMEOUT_S, Connection
from clients.failures import GatewayFailure

SERVER_NAME = "sqlgate"


def mcp_url(connection: Connection) -> str:
    return f"{connection.root_url}/mcp"


def _http_client(connection: Connection, timeout_s: float) -> httpx2.AsyncClient:
    return httpx2.AsyncClient(headers=connection.auth_headers(),
                              timeout=httpx2.Timeout(timeout_s, connect=DEFAULT_CONNECT_TIMEOUT_S))


async def check_gateway(connection: Connection, timeout_s: float) -> None:
    """Raise GatewayFailure (the gateway's own error, e.g. 401 `invalid_api_key`) unless the key is accepted."""
    async with _http_client(connection, timeout_s) as http:
        try:
            response = await http.get(f"{connection.v1_url}/models")
        except httpx2.HTTPError as exc:
            raise GatewayFailure(f"cannot reach the gateway at {connection.root_url}: {type(exc).__name__}") from None
        if response.status_code != 200:
            try:
                body: object = response.json()
            except ValueError:
                body = response.text
            raise GatewayFailure.from_body(response.status_code, body, response.headers.get("retry-after"))


def build_proxy(connection: Connection, timeout_s: float) -> Server[Client]:
    """The stdio server: its lifespan holds one MCP client of the gateway for the whole stdio session."""

    @asynccontextmanager
    async def gateway(_: Server[Client]) -> AsyncIterator[Client]:
        async with _http_client(connection, timeout_s) as http, Client(
            streamable_http_client(mcp_url(connection), http_client=http)
        ) as client:
            yield client

    async def list_tools(ctx: ServerRequestContext[Client], params: PaginatedRequestParams | None
                         ) -> ListToolsResult:
        try:
            return await ctx.lifespan_context.list_tools(cursor=params.cursor if params else None)
        except MCPError:
            raise
        except Exception as exc:
            raise MCPError(INTERNAL_ERROR, _unreachable(connection, exc)) from None

    async def call_tool(ctx: ServerRequestContext[Client], params: CallToolRequestParams) -> CallToolResult:
        try:
            return await ctx.lifespan_context.call_tool(params.name, params.arguments or {})
        except MCPError as exc:
            return _tool_error(f"{exc.error.message}")
        except Exception as exc:
            return _tool_error(_unreachable(connection, exc))

    return Server(SERVER_NAME, version="0.1.0", title="sqlgate text-to-SQL (via a gateway)", lifespan=gateway,
                  on_list_tools=list_tools, on_call_tool=call_tool)


def _unreachable(connection: Connection, exc: BaseException) -> str:
    return f"upstream_unavailable: the gateway at {connection.root_url} did not answer ({type(exc).__name__})"


def _tool_error(text: str) -> CallToolResult:
    return CallToolResult(content=[TextContent(type="text", text=text)], is_error=True)


async def serve_stdio(connection: Connection, timeout_s: float) -> None:
    """Check the key, then serve MCP on this process's stdin/stdout until the agent closes it."""
    await check_gateway(connection, timeout_s)
    server = build_proxy(connection, timeout_s)
    async with stdio_server() as (read_stream, write_stream):
        await server.run(read_stream, write_stream, server.create_initialization_options())
