"""The outer ASGI layer: request ids, auth and rate limits before the body is read, body caps, and the per-request
accounting (metrics, in-flight gauge, the log line) that must also cover streamed bodies to their last byte."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import time
import uuid
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

import orjson

from gateway.auth import presented_key
from gateway.errors import BodyTooLarge, GatewayError, RateLimited, ShuttingDown
from gateway.request_record import RequestRecord
from gateway.state import AppState

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

PROTECTED_PREFIXES = ("/v1/", "/generate", "/mcp")
# FastAPI's API documentation; behind a key unless SQLGATE_DOCS_ACCESS=public.
DOCS_PATHS = frozenset({"/docs", "/docs/oauth2-redirect", "/redoc", "/openapi.json"})
ROUTE_LABELS = {
    "/v1/completions": "completions",
    "/v1/chat/completions": "chat",
    "/v1/models": "models",
    "/v1/sql": "sql",
    "/v1/responses": "responses",
    "/mcp": "mcp",
    "/generate": "generate",
    "/health": "health",
    "/ready": "ready",
    "/metrics": "metrics",
    "/": "web",
}
UNLOGGED_ROUTES = frozenset({"health", "metrics", "static"})
_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,64}$")
# A 503 tells the client to come back; the openai SDK waits for what Retry-After says (else its own backoff).
DEFAULT_RETRY_AFTER = b"1"

logger = logging.getLogger("sqlgate.errors")


def route_label(path: str) -> str:
    label = ROUTE_LABELS.get(path)
    if label is not None:
        return label
    if path.startswith("/web/"):
        return "static"
    return "other"


async def _send_error(send: Send, error: GatewayError, extra_headers: list[tuple[bytes, bytes]]) -> None:
    body = orjson.dumps(error.body())
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    headers += [(k.lower().encode(), v.encode()) for k, v in error.headers.items()]
    await send({"type": "http.response.start", "status": error.status_code, "headers": headers + extra_headers})
    await send({"type": "http.response.body", "body": body})


class GatewayMiddleware:
    def __init__(self, app: ASGIApp, state_getter: Callable[[], AppState]) -> None:
        self.app = app
        self._state = state_getter

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        state = self._state()
        started = time.perf_counter()
        path: str = scope["path"]
        label = route_label(path)
        headers = dict(scope["headers"])
        incoming_id = headers.get(b"x-request-id", b"").decode("latin-1")
        request_id = incoming_id if _REQUEST_ID.match(incoming_id) else uuid.uuid4().hex
        record = RequestRecord(request_id=request_id, route=label, method=scope["method"])
        scope.setdefault("state", {})["record"] = record
        response_headers: list[tuple[bytes, bytes]] = [(b"x-request-id", request_id.encode())]

        async def send_wrapper(message: Message) -> None:
            if message["type"] == "http.response.start":
                record.status = message["status"]
                headers = list(message.get("headers", []))
                record.event_stream = any(name.lower() == b"content-type" and value.startswith(b"text/event-stream")
                                          for name, value in headers)
                extra = [(b"x-sqlgate-cache", record.cache.encode())] if record.cache else []
                if record.status == 503 and not any(name.lower() == b"retry-after" for name, _ in headers):
                    extra.append((b"retry-after", DEFAULT_RETRY_AFTER))
                message["headers"] = headers + response_headers + extra
            elif message["type"] == "http.response.body" and not message.get("more_body", False):
                record.response_complete = True
            await send(message)

        task = asyncio.current_task()
        assert task is not None
        state.drain.add(task)
        state.metrics.in_flight_inc()
        try:
            error = await self._admit(state, scope, headers, path, record, response_headers)
            if error is not None:
                record.error_code = error.code
                await _send_error(send_wrapper, error, [])
                return
            if b"content-length" not in headers and scope["method"] in ("POST", "PUT", "PATCH"):
                buffered = await self._buffered(receive, state.settings.max_body_bytes)
                if buffered is None:
                    state.metrics.rejected("body_too_large")
                    too_large = self._too_large(state)
                    record.error_code = too_large.code
                    await _send_error(send_wrapper, too_large, [])
                    return
                receive = buffered
            try:
                await self.app(scope, receive, send_wrapper)
            except asyncio.CancelledError:
                if not state.drain.ended_by_drain(task):
                    raise
                task.uncancel()
                await self._end_for_shutdown(send_wrapper, record)
            except Exception as exc:
                # Answered here, not by Starlette's outermost handler, so that the 500 carries the request id and
                # the log line, metrics and trace below see it with its status and code.
                logger.exception("unhandled error on %s %s", scope["method"], path, exc_info=exc)
                await self._end_for_error(send_wrapper, record)
        finally:
            state.drain.discard(task)
            state.metrics.in_flight_dec()
            elapsed = time.perf_counter() - started
            # An error inside a 200 stream is an error for the error-rate alerts: count it with its own status.
            state.metrics.observe_request(label, record.stream_error_status or record.status or 500, elapsed)
            if record.error_code is not None:
                state.metrics.error(label, record.error_code)
            state.finish_request(record, elapsed, log=label not in UNLOGGED_ROUTES)

    async def _admit(self, state: AppState, scope: Scope, headers: dict[bytes, bytes], path: str,
                     record: RequestRecord, response_headers: list[tuple[bytes, bytes]]) -> GatewayError | None:
        """Auth, rate limit and declared body size, before a byte of the body is read."""
        if path.startswith(PROTECTED_PREFIXES) or (path in DOCS_PATHS and state.settings.docs_access == "key"):
            try:
                record.key_name = state.keyring.identify(presented_key(headers))
            except GatewayError as exc:
                state.metrics.rejected("auth")
                return exc
            client = scope.get("client")
            bucket = state.keyring.rate_bucket(record.key_name, client[0] if client else None)
            decision = await state.limiter.hit(bucket)
            rate_headers = decision.headers() if decision.limit else {}
            response_headers.extend((k.encode(), v.encode()) for k, v in rate_headers.items()
                                    if k != "retry-after")
            if not decision.allowed:
                state.metrics.rejected("rate_limit")
                return RateLimited(
                    f"Rate limit reached for this API key ({decision.limit} requests per minute). "
                    f"Retry after {rate_headers['retry-after']} s.",
                    headers={"retry-after": rate_headers["retry-after"]},
                )
        declared = headers.get(b"content-length")
        if declared is not None:
            try:
                too_large = int(declared) > state.settings.max_body_bytes
            except ValueError:
                too_large = False
            if too_large:
                state.metrics.rejected("body_too_large")
                return self._too_large(state)
        return None

    @staticmethod
    async def _end_with(send: Send, record: RequestRecord, error: GatewayError) -> None:
        """End the request with `error` in the contract's shape: its body if nothing was sent yet, an in-band
        frame if an event stream had started. A plain answer cut between its start and its body cannot be
        mended: the server closes the connection."""
        record.error_code = error.code
        if not record.status:
            await _send_error(send, error, [])
        elif record.event_stream and not record.response_complete:
            record.stream_error_status = error.status_code
            frames = b"data: " + orjson.dumps(error.body()) + b"\n\ndata: [DONE]\n\n"
            await send({"type": "http.response.body", "body": frames, "more_body": False})

    async def _end_for_error(self, send: Send, record: RequestRecord) -> None:
        """An exception nobody handled becomes the contract's 500."""
        # If the connection itself is gone (the error may be just that), there is no one to answer; it is logged.
        with contextlib.suppress(Exception):
            await self._end_with(send, record,
                                 GatewayError("The server had an error while processing your request."))
        if not record.stream_error_status and record.status != 500:
            record.stream_error_status = 500  # a cut plain answer counts as the failure it was

    async def _end_for_shutdown(self, send: Send, record: RequestRecord) -> None:
        """The grace period after SIGTERM ran out with this request in flight: answer it in the contract's shape."""
        await self._end_with(send, record,
                             ShuttingDown("The server is shutting down and could not finish this request. Retry it."))

    @staticmethod
    def _too_large(state: AppState) -> BodyTooLarge:
        return BodyTooLarge(f"The request body exceeds {state.settings.max_body_bytes} bytes.")

    async def _buffered(self, receive: Receive, limit: int) -> Receive | None:
        """A body without Content-Length (chunked) is read here, up to the cap, and replayed to the app; None
        when it is over the cap. Framework body parsing would turn an error raised mid-read into a 400."""
        chunks: list[bytes] = []
        size = 0
        more = True
        while more:
            message = await receive()
            if message["type"] != "http.request":
                break
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > limit:
                return None
            chunks.append(chunk)
            more = bool(message.get("more_body", False))
        replay: list[Message] = [{"type": "http.request", "body": b"".join(chunks), "more_body": False}]

        async def replaying() -> Message:
            return replay.pop() if replay else await receive()

        return replaying
