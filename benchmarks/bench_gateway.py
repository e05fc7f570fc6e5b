"""The production gateway, unchanged, with one bench-only addition on its upstream seam (`UpstreamClient.encode`):
every body it sends to vLLM's `/v1/completions` also gets `ignore_eos: true`, so that with `max_tokens` from a
bench generation config (SQLGATE_GENERATION_CONFIG) a random-weight model generates exactly `max_tokens` tokens
through the gateway, with the very sampling parameters the benchmark sends when it calls vLLM directly.

Why a seam and not a setting: the gateway pins decoding in `generation.toml` (extra keys are refused), which is
right for production; the bench only needs equal work on both paths. The rewrite adds one key to the payload before
it is encoded.

    BENCH_IGNORE_EOS=1 SQLGATE_...=... python -m benchmarks.bench_gateway --port 8000 --workers 4
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

from fastapi import FastAPI

from gateway.__main__ import serve
from gateway.app import create_app as create_gateway_app
from gateway.settings import Settings
from gateway.upstream import UpstreamClient

IGNORE_EOS_ENV = "BENCH_IGNORE_EOS"


def force_exact_length(payload: dict[str, Any]) -> dict[str, Any]:
    """The same completion request, made to generate exactly `max_tokens` tokens (the end-of-text token is ignored;
    the stop string `<|im_end|>` can't occur in detokenised text, where special tokens are skipped)."""
    return {**payload, "ignore_eos": True}


class ExactLengthUpstream(UpstreamClient):
    """The gateway's upstream client, sending every completion request with `force_exact_length`."""

    def encode(self, payload: dict[str, Any]) -> bytes:
        return super().encode(force_exact_length(payload))


def create_app() -> FastAPI:
    """The gateway from SQLGATE_* settings; with BENCH_IGNORE_EOS=1, on the exact-length upstream client."""
    settings = Settings()
    if os.environ.get(IGNORE_EOS_ENV) == "1":
        return create_gateway_app(settings, upstream_class=ExactLengthUpstream)
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
