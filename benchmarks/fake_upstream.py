"""An upstream that answers at once: a raw asyncio HTTP/1.1 server that replies to vLLM's `/v1/completions` with a
canned completion (the reference SQL of the benchmark question), so that what remains of a request's latency is the
gateway's and the client's own. Keep-alive, no framework, one process.

    python -m benchmarks.fake_upstream --port 8101
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
from typing import Any, cast

from benchmarks.prompts import answer_for_prompt

MODEL = "qwen2.5-1.5b-sql"
MAX_HEADER_BYTES = 64 * 1024


def completion_body(payload: dict[str, Any]) -> bytes:
    """What vLLM's /v1/completions returns for `payload`, with the reference SQL as the text."""
    prompt = payload.get("prompt")
    text = answer_for_prompt(prompt) if isinstance(prompt, str) else "SELECT 1"
    prompt_tokens = len(prompt) // 4 if isinstance(prompt, str) else 1
    completion_tokens = max(1, len(text) // 4)
    return json.dumps({
        "id": "cmpl-fake",
        "object": "text_completion",
        "created": 0,
        "model": payload.get("model") or MODEL,
        "choices": [{"index": 0, "text": text, "logprobs": None, "finish_reason": "stop", "stop_reason": None}],
        "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
                  "total_tokens": prompt_tokens + completion_tokens},
    }).encode()


MODELS_BODY = json.dumps({"object": "list", "data": [{"id": MODEL, "object": "model", "owned_by": "fake"}]}).encode()


def _response(status: str, body: bytes) -> bytes:
    head = (f"HTTP/1.1 {status}\r\ncontent-type: application/json\r\ncontent-length: {len(body)}\r\n"
            "connection: keep-alive\r\n\r\n")
    return head.encode() + body


class FakeVllmProtocol(asyncio.Protocol):
    """One connection: parse complete requests out of the buffer and answer each at once."""

    def __init__(self) -> None:
        self._buffer = b""
        self._transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports implement asyncio.Transport without subclassing it.
        self._transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        self._buffer += data
        while True:
            end = self._buffer.find(b"\r\n\r\n")
            if end < 0:
                if len(self._buffer) > MAX_HEADER_BYTES:
                    self._close()
                return
            head = self._buffer[:end].decode("latin-1")
            request_line, *header_lines = head.split("\r\n")
            length = 0
            for line in header_lines:
                name, _, value = line.partition(":")
                if name.strip().lower() == "content-length":
                    length = int(value.strip())
            if len(self._buffer) < end + 4 + length:
                return
            body = self._buffer[end + 4:end + 4 + length]
            self._buffer = self._buffer[end + 4 + length:]
            self._answer(request_line, body)

    def _answer(self, request_line: str, body: bytes) -> None:
        assert self._transport is not None
        method, _, rest = request_line.partition(" ")
        path = rest.partition(" ")[0]
        if method == "POST" and path == "/v1/completions":
            try:
                payload = json.loads(body)
            except ValueError:
                self._transport.write(_response("400 Bad Request", b'{"error": "not json"}'))
                return
            self._transport.write(_response("200 OK", completion_body(payload)))
        elif method == "GET" and path == "/v1/models":
            self._transport.write(_response("200 OK", MODELS_BODY))
        elif method == "GET" and path == "/health":
            self._transport.write(_response("200 OK", b"{}"))
        else:
            self._transport.write(_response("404 Not Found", b'{"error": "not found"}'))

    def _close(self) -> None:
        if self._transport is not None:
            self._transport.close()


async def serve(host: str, port: int) -> None:
    loop = asyncio.get_running_loop()
    server = await loop.create_server(FakeVllmProtocol, host, port, reuse_address=True)
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    async with server:
        await stop.wait()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args(argv)
    try:
        import uvloop

        uvloop.run(serve(args.host, args.port))
    except ImportError:
        asyncio.run(serve(args.host, args.port))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
