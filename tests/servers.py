"""Real servers on 127.0.0.1 for tests: uvicorn in a thread, redis-server as a process, and a fault-injecting
fake upstream. The fake is only for faults; happy paths go through real vLLM."""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import uvicorn

DEADLINE_S = 20.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for(condition: Callable[[], bool], what: str, deadline_s: float = DEADLINE_S) -> None:
    """Poll a real condition until it holds or the deadline passes (never a fixed sleep)."""
    end = time.monotonic() + deadline_s
    while not condition():
        if time.monotonic() > end:
            raise TimeoutError(f"timed out waiting for {what}")
        time.sleep(0.005)


@dataclass
class RunningServer:
    base_url: str
    port: int
    server: uvicorn.Server
    thread: threading.Thread


@contextlib.contextmanager
def serve_in_thread(app: Any, **config: Any) -> Iterator[RunningServer]:
    """Serve an ASGI app with uvicorn on a free loopback port in a background thread."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="on", **config))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        wait_for(lambda: server.started or not thread.is_alive(), "uvicorn start")
        if not server.started:
            raise RuntimeError("uvicorn failed to start")
        yield RunningServer(f"http://127.0.0.1:{port}", port, server, thread)
    finally:
        server.should_exit = True
        thread.join(timeout=DEADLINE_S)
        sock.close()


@dataclass
class RedisServer:
    url: str
    port: int
    process: subprocess.Popen[bytes]

    def restart(self) -> None:
        """Stop and start again on the same port (its data is gone: no persistence)."""
        self.process.terminate()
        self.process.wait(timeout=DEADLINE_S)
        self.process = _spawn_redis(self.port)


def _spawn_redis(port: int) -> subprocess.Popen[bytes]:
    binary = shutil.which("redis-server")
    if binary is None:
        raise RuntimeError("redis-server is not installed (apt-get install redis-server)")
    process = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
         "--dir", tempfile.gettempdir()],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )

    def accepting() -> bool:
        with socket.socket() as sock:
            return sock.connect_ex(("127.0.0.1", port)) == 0

    wait_for(accepting, "redis-server")
    return process


@contextlib.contextmanager
def redis_server() -> Iterator[RedisServer]:
    port = free_port()
    server = RedisServer(f"redis://127.0.0.1:{port}/0", port, _spawn_redis(port))
    try:
        yield server
    finally:
        server.process.terminate()
        server.process.wait(timeout=DEADLINE_S)


# ---- fault-injecting fake upstream --------------------------------------------------------------------------

Fault = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Any]


class FakeUpstream:
    """A raw asyncio HTTP/1.1 server on a real socket whose every answer is a scripted fault.

    Raw sockets (not an ASGI app) so it can misbehave in ways a framework won't: reset connections, truncate
    frames, stall. `faults` is a queue: each connection takes the next one; the last one repeats.
    """

    def __init__(self) -> None:
        self.faults: list[Fault] = []
        self.connections = 0
        self.requests: list[bytes] = []
        self.open_connections = 0
        self._handlers: set[asyncio.Task[None]] = set()
        self._loop = asyncio.new_event_loop()
        self._server: asyncio.base_events.Server | None = None
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self.port = 0

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> FakeUpstream:
        self._thread.start()
        future = asyncio.run_coroutine_threadsafe(self._start(), self._loop)
        future.result(timeout=DEADLINE_S)
        return self

    async def _start(self) -> None:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._handlers.add(task)
        task.add_done_callback(self._handlers.discard)
        self.connections += 1
        self.open_connections += 1
        try:
            while True:
                request = await read_request(reader)
                if request is None:
                    break
                self.requests.append(request)
                fault = self.faults.pop(0) if len(self.faults) > 1 else self.faults[0]
                keep_open = await fault(reader, writer)
                if not keep_open:
                    break
        except (ConnectionError, asyncio.IncompleteReadError, asyncio.CancelledError):
            pass
        finally:
            self.open_connections -= 1
            with contextlib.suppress(Exception):
                writer.close()

    def call_soon(self, callback: Callable[[], object]) -> None:
        """Run `callback` on the fake's own event loop (where its asyncio objects live)."""
        self._loop.call_soon_threadsafe(callback)

    def stop(self) -> None:
        async def _stop() -> None:
            if self._server is not None:
                self._server.close()
            for handler in list(self._handlers):
                handler.cancel()
            await asyncio.gather(*self._handlers, return_exceptions=True)
        asyncio.run_coroutine_threadsafe(_stop(), self._loop).result(timeout=DEADLINE_S)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=DEADLINE_S)
        self._loop.close()


async def read_request(reader: asyncio.StreamReader) -> bytes | None:
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except (asyncio.IncompleteReadError, ConnectionError):
        return None
    length = 0
    for line in head.split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            length = int(line.split(b":", 1)[1])
    body = await reader.readexactly(length) if length else b""
    return body


def http_response(status: int, body: bytes, content_type: str = "application/json",
                  headers: dict[str, str] | None = None) -> bytes:
    lines = [f"HTTP/1.1 {status} X", f"content-type: {content_type}", f"content-length: {len(body)}"]
    lines += [f"{k}: {v}" for k, v in (headers or {}).items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


@contextlib.contextmanager
def fake_upstream(*faults: Fault) -> Iterator[FakeUpstream]:
    upstream = FakeUpstream()
    upstream.faults = list(faults)
    upstream.start()
    try:
        yield upstream
    finally:
        upstream.stop()


def env_flag(name: str) -> bool:
    return os.environ.get(name, "").lower() in ("1", "true", "yes")
