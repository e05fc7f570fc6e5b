"""What agents reach: the MCP server at `/mcp` (Streamable HTTP, mounted in the gateway app).

    tools.py   the three tools' work, shaped as MCP tool results: generate (the answer pipeline), check, dialects
    server.py  the `mcp` SDK's server with those tools, its session manager, and the ASGI endpoint at /mcp
"""

from gateway.agents.server import MCP_PATH, McpEndpoint, build_mcp_server

__all__ = ["MCP_PATH", "McpEndpoint", "build_mcp_server"]
