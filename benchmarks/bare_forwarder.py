"""The floor the gateway is measured against: the least a FastAPI service can do for the same request. It parses
the same body with a pydantic model, renders the same training prompt, forwards it to the upstream on one pooled
client and answers the completion, under the same uvicorn (uvloop, httptools, no access log). No auth, limits, caps,
SQL check, metrics or logs: what the gateway adds beyond this is the cost of its policy.

`--transport aiohttp` (the gateway's own upstream transport) is the floor; `--transport httpx` is the same forwarder
on one `httpx.AsyncClient`, kept to show what the choice of transport costs.

    SQLGATE_UPSTREAM_URL=http://127.0.0.1:8101 python -m benchmarks.bare_forwarder --port 8000 --transport aiohttp
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import aiohttp
import httpx
import orjson
import uvicorn
from fastapi import FastAPI, Request, Response
from pydantic import BaseModel, Field

from gateway.prompt import render_prompt
from gateway.settings import DEFAULT_GENERATION_CONFIG, load_generation_params


class Question(BaseModel):
    prompt: str
    schema_text: str = Field("", alias="schema")


Post = Callable[[bytes], Awaitable[bytes]]


@asynccontextmanager
async def httpx_post(upstream_url: str) -> AsyncIterator[Post]:
    async with httpx.AsyncClient(base_url=upstream_url, timeout=httpx.Timeout(60.0, connect=2.0),
                                 limits=httpx.Limits(max_connections=256, max_keepalive_connections=256)) as client:
        async def post(body: bytes) -> bytes:
            response = await client.post("/v1/completions", content=body, headers=JSON)
            return response.content
        yield post


@asynccontextmanager
async def aiohttp_post(upstream_url: str) -> AsyncIterator[Post]:
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=256, keepalive_timeout=4.0),
                                     timeout=aiohttp.ClientTimeout(connect=2.0, sock_read=60.0)) as session:
        async def post(body: bytes) -> bytes:
            async with session.post(f"{upstream_url}/v1/completions", data=body, headers=JSON) as response:
                return await response.read()
        yield post


JSON = {"content-type": "application/json"}
TRANSPORTS = {"httpx": httpx_post, "aiohttp": aiohttp_post}


def create_app() -> FastAPI:
    upstream_url = os.environ.get("SQLGATE_UPSTREAM_URL", "http://127.0.0.1:8001")
    transport = TRANSPORTS[os.environ.get("BARE_FORWARDER_TRANSPORT", "aiohttp")]
    generation = load_generation_params(DEFAULT_GENERATION_CONFIG).as_upstream_fields()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with transport(upstream_url) as post:
            app.state.post = post
            yield

    app = FastAPI(lifespan=lifespan)

    @app.get("/health")
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    @app.post("/v1/completions")
    async def completions(body: Question, request: Request) -> Response:
        payload: dict[str, Any] = {"model": "qwen2.5-1.5b-sql", "prompt": render_prompt(body.prompt, body.schema_text),
                                   **generation}
        answer = orjson.loads(await request.app.state.post(orjson.dumps(payload)))
        answer["choices"][0]["text"] = answer["choices"][0]["text"].strip()
        return Response(orjson.dumps(answer), media_type="application/json")

    return app


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.bare_forwarder")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--transport", choices=sorted(TRANSPORTS), default="aiohttp",
                        help="the upstream client: aiohttp (the gateway's) or httpx")
    args = parser.parse_args(argv)
    os.environ["BARE_FORWARDER_TRANSPORT"] = args.transport  # read by the app factory uvicorn imports
    uvicorn.run("benchmarks.bare_forwarder:create_app", factory=True, host=args.host, port=args.port,
                access_log=False, log_level="warning")
    return 0


if __name__ == "__main__":
    sys.exit(main())
