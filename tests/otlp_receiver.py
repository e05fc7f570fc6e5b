"""A tiny Langfuse-shaped OTLP/HTTP receiver on 127.0.0.1 for tests: it checks Basic auth, decodes the protobuf
exports the real Langfuse SDK sends, and keeps every span with its attributes. It can also answer slowly or with
500 to show that a bad Langfuse never reaches the request path."""

from __future__ import annotations

import base64
import gzip
import json
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Literal

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue

TRACES_PATH = "/api/public/otel/v1/traces"
SCORES_PATH = "/api/public/scores"  # the SDK sends scores apart from spans, as JSON batches
Mode = Literal["ok", "slow", "fail"]


def _value(value: AnyValue) -> Any:
    kind = value.WhichOneof("value")
    if kind == "array_value":
        return [_value(v) for v in value.array_value.values]
    if kind == "kvlist_value":
        return {kv.key: _value(kv.value) for kv in value.kvlist_value.values}
    return getattr(value, kind) if kind else None


@dataclass
class ReceivedSpan:
    name: str
    trace_id: str
    span_id: str
    parent_span_id: str
    start_ns: int
    end_ns: int
    attributes: dict[str, Any]
    scope: str

    def json_attribute(self, key: str) -> Any:
        """Langfuse JSON-encodes input, output, metadata, usage and model parameters."""
        raw = self.attributes.get(key)
        return json.loads(raw) if isinstance(raw, str) else raw

    @property
    def observation_type(self) -> str | None:
        value = self.attributes.get("langfuse.observation.type")
        return value if isinstance(value, str) else None


@dataclass
class OtlpReceiver:
    public_key: str
    secret_key: str
    mode: Mode = "ok"
    delay_s: float = 5.0  # how long "slow" holds each answer, unless released sooner
    base_url: str = ""
    spans: list[ReceivedSpan] = field(default_factory=list)
    bodies: list[bytes] = field(default_factory=list)  # decompressed request bodies, for "never sent" checks
    scores: list[dict[str, Any]] = field(default_factory=list)
    requests_started: int = 0
    unauthorized: int = 0
    release: threading.Event = field(default_factory=threading.Event)
    # The server's own per-connection threads: they end when the exporter's connection does, a moment after the
    # exporter has shut down, so thread-leak checks of the exporter leave them out.
    handler_threads: set[int] = field(default_factory=set)
    _changed: threading.Condition = field(default_factory=threading.Condition)

    def expected_authorization(self) -> str:
        token = base64.b64encode(f"{self.public_key}:{self.secret_key}".encode()).decode("ascii")
        return f"Basic {token}"

    def _note_request(self) -> None:
        with self._changed:
            self.requests_started += 1
            self._changed.notify_all()

    def _store(self, body: bytes) -> None:
        request = ExportTraceServiceRequest()
        request.ParseFromString(body)
        spans = [
            ReceivedSpan(
                name=span.name,
                trace_id=span.trace_id.hex(),
                span_id=span.span_id.hex(),
                parent_span_id=span.parent_span_id.hex(),
                start_ns=span.start_time_unix_nano,
                end_ns=span.end_time_unix_nano,
                attributes={kv.key: _value(kv.value) for kv in span.attributes},
                scope=scope_spans.scope.name,
            )
            for resource_spans in request.resource_spans
            for scope_spans in resource_spans.scope_spans
            for span in scope_spans.spans
        ]
        with self._changed:
            self.bodies.append(body)
            self.spans.extend(spans)
            self._changed.notify_all()

    def _store_scores(self, body: bytes) -> int:
        payload = json.loads(body)
        batch = payload.get("scores", payload) if isinstance(payload, dict) else payload
        items = [item for item in batch if isinstance(item, dict)]
        with self._changed:
            self.scores.extend(items)
            self._changed.notify_all()
        return len(items)

    def wait_until(self, condition: Callable[[OtlpReceiver], bool], timeout_s: float = 10.0) -> None:
        """Blocks until `condition(self)` holds (re-checked on every arrival) or raises TimeoutError."""
        deadline = time.monotonic() + timeout_s
        with self._changed:
            while not condition(self):
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError("the receiver did not get what was expected in time")
                self._changed.wait(remaining)

    def by_type(self, observation_type: str) -> list[ReceivedSpan]:
        with self._changed:
            return [s for s in self.spans if s.observation_type == observation_type]


def _handler(receiver: OtlpReceiver) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def setup(self) -> None:
            receiver.handler_threads.add(threading.get_ident())
            super().setup()

        def log_message(self, format: str, *args: Any) -> None:  # keep test output quiet
            pass

        def _answer(self, status: int, body: bytes = b"", content_type: str = "application/x-protobuf") -> None:
            self.send_response(status)
            self.send_header("content-type", content_type)
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("content-length") or 0))
            receiver._note_request()
            if self.path not in (TRACES_PATH, SCORES_PATH):
                self._answer(404)
                return
            if self.headers.get("authorization") != receiver.expected_authorization():
                with receiver._changed:
                    receiver.unauthorized += 1
                self._answer(401)
                return
            if receiver.mode == "slow":
                receiver.release.wait(receiver.delay_s)
            if receiver.mode == "fail":
                self._answer(500, b'{"message": "injected failure"}', "application/json")
                return
            if self.headers.get("content-encoding") == "gzip":
                body = gzip.decompress(body)
            if self.path == SCORES_PATH:
                accepted = receiver._store_scores(body)
                self._answer(207, json.dumps({"accepted": accepted, "rejected": 0, "errors": []}).encode(),
                             "application/json")
                return
            receiver._store(body)
            self._answer(200, ExportTraceServiceResponse().SerializeToString())


    return Handler


@contextmanager
def otlp_receiver(public_key: str = "pk-lf-test", secret_key: str = "sk-lf-test", mode: Mode = "ok",
                  delay_s: float = 5.0) -> Iterator[OtlpReceiver]:
    """Runs a receiver on a free loopback port in a thread; its `base_url` is what Langfuse's base_url takes."""
    receiver = OtlpReceiver(public_key=public_key, secret_key=secret_key, mode=mode, delay_s=delay_s)
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(receiver))
    server.daemon_threads = True
    receiver.base_url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, name="otlp-receiver",
                              daemon=True)
    thread.start()
    try:
        yield receiver
    finally:
        receiver.release.set()  # let held "slow" answers go so their threads end
        server.shutdown()
        server.server_close()
        thread.join()
