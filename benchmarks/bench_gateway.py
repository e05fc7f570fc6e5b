"""The production gateway, unchanged, with one bench-only addition on its upstream seam: every body it sends to
vLLM's `/v1/completions` also gets `ignore_eos: true`, so that with `max_tokens` from a bench generation config
(SQLGATE_GENERATION_CONFIG) a random-weight model generates exactly `max_tokens` tokens through the gateway, with
the very sampling parameters the benchmark sends when it calls vLLM directly.

Why a transport and not a setting: the gateway pins decoding in `generation.toml` (extra keys are refused), which is
right for production; the bench only needs equal work on both paths. The rewrite costs one orjson load and dump of
a ~1.5 kB body (about 2 microseconds, measured by the overhead benchmark).

    BENCH_IGNORE_EOS=1 SQLGATE_...=... python -m benchmarks.bench_gateway --port 8000 --workers 4
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

import httpx
import orjson
from fastapi import FastAPI

from gateway.__main__ import serve
from gateway.app import create_app as create_gateway_app
from gateway.settings import Settings

IGNORE_EOS_ENV = "BENCH_IGNORE_EOS"


def force_exact_length(body: bytes) -> bytes:
    """The same completion request, made to generate exactly `max_tokens` tokens (the end-of-text token is ignored;
    the stop string `<|im_end|>` can't occur in detokenised text, where special tokens are skipped)."""
    payload: dict[str, Any] = orjson.loads(body)
    payload["ignore_eos"] = True
    return orjson.dumps(payload)


class ExactLengthTransport(httpx.AsyncBaseTransport):
    """Rewrites completion bodies with `force_exact_length`, then sends them on a pooled HTTP transport."""

    def __init__(self, pool_size: int) -> None:
        # The gateway's own client applies its pool limits only to a transport it makes itself: give ours the same.
        self._inner = httpx.AsyncHTTPTransport(
            limits=httpx.Limits(max_connections=pool_size, max_keepalive_connections=pool_size)
        )

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if request.method == "POST" and request.url.path.endswith("/v1/completions"):
            body = force_exact_length(request.content)
            headers = [(k, v) for k, v in request.headers.raw if k.lower() != b"content-length"]
            request = httpx.Request(request.method, request.url, headers=headers, content=body,
                                    extensions=request.extensions)
        return await self._inner.handle_async_request(request)

    async def aclose(self) -> None:
        await self._inner.aclose()


def create_app() -> FastAPI:
    """The gateway from SQLGATE_* settings; with BENCH_IGNORE_EOS=1, on the exact-length transport."""
    settings = Settings()
    if os.environ.get(IGNORE_EOS_ENV) == "1":
        return create_gateway_app(settings, upstream_transport=ExactLengthTransport(settings.upstream_pool_size))
    return create_gateway_app(settings)


def main(argv: list[str] | None = None) -> int:
    """Serve like `python -m gateway` does (same uvicorn options), with this module's factory."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.bench_gateway")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--workers", type=int, default=1)
    args = parser.parse_args(argv)
    serve("benchmarks.bench_gateway:create_app", Settings(), host=args.host, port=args.port, workers=args.workers)
    return 0


if __name__ == "__main__":
    sys.exit(main())
