"""The HTTP/1.1 protocol the gateway is served with: uvicorn's httptools protocol plus the two limits uvicorn lacks,
a cap on a request's header bytes and a deadline for receiving a whole request (headers and body).

Without them a client can make the server buffer megabytes of headers before auth runs, or hold a connection (and
its memory) open for as long as it likes by sending a byte now and then. Both limits are enforced where the bytes
arrive, before the app sees the request. `python -m gateway` uses this protocol; with plain uvicorn pass
`--http gateway.http_server:LimitedHttpToolsProtocol`.
"""

from __future__ import annotations

import asyncio
from http import HTTPStatus

import orjson
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from gateway.errors import GatewayError, HeadersTooLarge, RequestTimeout

MAX_HEADER_BYTES = 64 * 1024
REQUEST_READ_TIMEOUT_S = 10.0
# What each header line costs besides its name and value (": " and CRLF), and the request line's share.
_HEADER_LINE_OVERHEAD = 4


class _Refused(Exception):
    """Raised inside a parser callback to stop parsing a request that was already answered."""


class LimitedHttpToolsProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with a header-size cap (431) and a request read deadline (408, then close)."""

    max_header_bytes: int = MAX_HEADER_BYTES
    read_timeout_s: float = REQUEST_READ_TIMEOUT_S

    _deadline: asyncio.TimerHandle | None = None
    _refused = False
    _in_message = False  # a request began and has not been fully received
    _in_headers = False  # ... and its headers are not complete
    _raw_header_bytes = 0  # bytes received while the headers were incomplete (a header still being buffered)
    _header_bytes = 0  # the parsed request line and headers

    # Connection events.
    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm()  # a connection that never sends a request is bounded too

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self._refused:
            return
        super().data_received(data)
        if self._in_headers and not self._refused and not self.transport.is_closing():
            self._raw_header_bytes += len(data)
            if self._raw_header_bytes > self.max_header_bytes:
                self._refuse_headers()

    def send_400_response(self, msg: str) -> None:
        if not self._refused:  # a refusal already answered: the parser error is only how parsing stopped
            super().send_400_response(msg)

    # Parser callbacks.
    def on_message_begin(self) -> None:
        self._in_message = self._in_headers = True
        self._raw_header_bytes = self._header_bytes = 0
        self._arm()
        super().on_message_begin()

    def on_url(self, url: bytes) -> None:
        self._count(len(url) + _HEADER_LINE_OVERHEAD)
        super().on_url(url)

    def on_header(self, name: bytes, value: bytes) -> None:
        self._count(len(name) + len(value) + _HEADER_LINE_OVERHEAD)
        super().on_header(name, value)

    def on_headers_complete(self) -> None:
        self._in_headers = False
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        self._in_message = False
        self._disarm()
        super().on_message_complete()

    # The limits.
    def _count(self, size: int) -> None:
        self._header_bytes += size
        if self._header_bytes > self.max_header_bytes:
            self._refuse_headers()
            raise _Refused

    def _refuse_headers(self) -> None:
        self._refuse(HeadersTooLarge(f"The request headers exceed {self.max_header_bytes} bytes."))

    def _arm(self) -> None:
        if self._deadline is None:
            self._deadline = self.loop.call_later(self.read_timeout_s, self._read_timed_out)

    def _disarm(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _read_timed_out(self) -> None:
        self._deadline = None
        if self.transport.is_closing():
            return
        # Answer 408 only while the app has not started its own answer; a connection that never began a
        # request is simply closed.
        if self._in_message and (self._in_headers or self.cycle is None or not self.cycle.response_started):
            self._refuse(RequestTimeout(f"The request was not received within {self.read_timeout_s:g} s."))
        else:
            self._refused = True
            self.transport.close()

    def _refuse(self, error: GatewayError) -> None:
        """Answer `error` in the contract's shape and close the connection; nothing more is read from it."""
        self._refused = True
        self._disarm()
        body = orjson.dumps(error.body())
        status = HTTPStatus(error.status_code)
        head = [f"HTTP/1.1 {status.value} {status.phrase}", "content-type: application/json",
                f"content-length: {len(body)}", "connection: close"]
        head += [f"{name.decode('latin-1')}: {value.decode('latin-1')}"
                 for name, value in self.server_state.default_headers]
        self.transport.write(("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + body)
        self.transport.close()
