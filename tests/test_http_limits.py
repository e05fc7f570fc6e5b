"""The HTTP server's own limits (gateway/http_server.py): a cap on request header bytes (431) and a deadline for
receiving a whole request (408, then the connection closes), on a real uvicorn on 127.0.0.1 and on the production
entry point `python -m gateway`. Slow clients are real sockets that send part of a request and then wait, bounded
by a socket timeout, for the server to close on them: no sleeps."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import orjson
import pytest

from gateway.app import create_app
from gateway.http_server import MAX_HEADER_BYTES, REQUEST_READ_TIMEOUT_S, LimitedHttpToolsProtocol
from tests.conftest import API_KEY, make_settings
from tests.servers import free_port, serve_in_thread, wait_for

# Far above any deadline under test: a hung server fails the test instead of hanging it.
SOCKET_TIMEOUT_S = 60.0
REPO = Path(__file__).resolve().parents[1]


class QuickDeadlineProtocol(LimitedHttpToolsProtocol):
    """The production protocol with a short read deadline, so that a test need not wait 10 s."""

    read_timeout_s = 0.3


def exchange(port: int, request: bytes, *, half_close: bool = False) -> bytes:
    """Send `request` and read until the server closes the connection."""
    with socket.create_connection(("127.0.0.1", port), timeout=SOCKET_TIMEOUT_S) as sock:
        sock.sendall(request)
        if half_close:
            sock.shutdown(socket.SHUT_WR)
        return read_to_close(sock)


def read_to_close(sock: socket.socket) -> bytes:
    chunks = []
    while chunk := sock.recv(65536):
        chunks.append(chunk)
    return b"".join(chunks)


def status_and_body(response: bytes) -> tuple[int, dict]:
    head, _, body = response.partition(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    return status, orjson.loads(body) if body.startswith(b"{") else {}


def get(path: str, headers: dict[str, str]) -> bytes:
    lines = [f"GET {path} HTTP/1.1", "host: gateway", "connection: close", *(f"{k}: {v}" for k, v in headers.items())]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


@contextmanager
def gateway(protocol: type[LimitedHttpToolsProtocol] = LimitedHttpToolsProtocol) -> Iterator[int]:
    app = create_app(make_settings(upstream_url=f"http://127.0.0.1:{free_port()}"))
    with serve_in_thread(app, http=protocol) as server:
        yield server.port


def test_headers_over_64_kib_are_refused_with_431_before_auth() -> None:
    with gateway() as port:
        one_big = exchange(port, get("/v1/models", {"x-padding": "a" * (MAX_HEADER_BYTES + 1)}))
        many_small = exchange(port, get("/v1/models", {f"x-pad-{i}": "b" * 1000 for i in range(80)}))
        within = exchange(port, get("/health", {"x-padding": "c" * (MAX_HEADER_BYTES - 2048)}))
    for response in (one_big, many_small):
        status, body = status_and_body(response)
        assert status == 431
        assert body["error"]["code"] == "headers_too_large" and body["error"]["type"] == "invalid_request_error"
    assert status_and_body(within)[0] == 200


def test_a_32_mb_header_is_refused_without_being_buffered() -> None:
    with gateway() as port, socket.create_connection(("127.0.0.1", port), timeout=SOCKET_TIMEOUT_S) as sock:
        sock.sendall(b"GET /v1/models HTTP/1.1\r\nhost: gateway\r\nx-padding: ")
        sent = 0
        chunk = b"a" * 65536
        try:
            while sent < 32 * 1024 * 1024:
                sock.sendall(chunk)
                sent += len(chunk)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the server answered and closed long before 32 MB
        response = read_to_close(sock)
    assert sent < 32 * 1024 * 1024
    assert status_and_body(response)[0] == 431


def test_a_client_that_stops_sending_its_headers_gets_408_and_is_disconnected() -> None:
    with gateway(QuickDeadlineProtocol) as port:
        response = exchange(port, b"GET /health HTTP/1.1\r\nhost: gateway\r\nx-slow: 1")
    status, body = status_and_body(response)
    assert status == 408 and body["error"]["code"] == "request_timeout"


def test_a_client_that_stops_sending_its_body_is_disconnected() -> None:
    body = orjson.dumps({"question": "How many?", "schema": "CREATE TABLE t (a int)"})
    head = (f"POST /v1/sql HTTP/1.1\r\nhost: gateway\r\nauthorization: Bearer {API_KEY}\r\n"
            f"content-type: application/json\r\ncontent-length: {len(body)}\r\n\r\n").encode()
    with gateway(QuickDeadlineProtocol) as port:
        response = exchange(port, head + body[:10])
        assert status_and_body(response)[0] == 408
        # A whole request on the same server is not affected by the deadline.
        assert status_and_body(exchange(port, get("/health", {})))[0] == 200


def test_a_connection_that_never_sends_a_request_is_closed() -> None:
    with gateway(QuickDeadlineProtocol) as port, socket.create_connection(("127.0.0.1", port),
                                                                        timeout=SOCKET_TIMEOUT_S) as sock:
        assert read_to_close(sock) == b""


def test_the_limits_are_the_contracts() -> None:
    assert MAX_HEADER_BYTES <= 64 * 1024
    assert REQUEST_READ_TIMEOUT_S <= 10.0


def test_python_m_gateway_enforces_both_limits() -> None:
    """The production entry point, as `make up` starts it: a real process."""
    port = free_port()
    env = {**os.environ, "PYTHONPATH": str(REPO), "SQLGATE_API_KEYS": API_KEY, "SQLGATE_PORT": str(port),
           "SQLGATE_UPSTREAM_URL": f"http://127.0.0.1:{free_port()}", "SQLGATE_READY_INTERVAL_S": "0",
           "SQLGATE_LOG_LEVEL": "warning"}
    process = subprocess.Popen([sys.executable, "-m", "gateway"], cwd=REPO, env=env,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        def answering() -> bool:
            assert process.poll() is None, "python -m gateway exited"
            try:
                return status_and_body(exchange(port, get("/health", {})))[0] == 200
            except OSError:
                return False

        wait_for(answering, "python -m gateway", deadline_s=120)
        with socket.create_connection(("127.0.0.1", port), timeout=SOCKET_TIMEOUT_S) as slow:
            slow.sendall(b"GET /health HTTP/1.1\r\nhost: gateway\r\n")  # ... and nothing more
            big = exchange(port, get("/v1/models", {"x-padding": "a" * (MAX_HEADER_BYTES + 1)}))
            assert status_and_body(big)[0] == 431
            # The production deadline (10 s) ends the slow client; the socket timeout only bounds the test.
            assert status_and_body(read_to_close(slow))[0] == 408
    finally:
        process.terminate()
        process.wait(timeout=30)


def test_plain_uvicorn_loads_the_protocol_by_name(monkeypatch: pytest.MonkeyPatch) -> None:
    """The documented `uvicorn gateway.app:create_app --factory --http gateway.http_server:LimitedHttpToolsProtocol`."""
    import uvicorn

    monkeypatch.setenv("SQLGATE_API_KEYS", API_KEY)
    config = uvicorn.Config("gateway.app:create_app", factory=True,
                            http="gateway.http_server:LimitedHttpToolsProtocol")
    config.load()
    assert config.http_protocol_class is LimitedHttpToolsProtocol
