"""Upstream behaviours the reliability runs need beyond tests/faults.py, built from the same fake: a healthy vLLM
that answers plain or streamed as asked, answers held behind a gate, bodies that stall or break half-way, and
upstreams that are down or whose accept queue is full."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, Literal

import orjson

from tests import faults
from tests.servers import FakeUpstream, Fault, free_port, wait_for

HEALTHY_SQL = "SELECT count(*) FROM singer"
HEALTHY_STREAM = ["SELECT", " count(*)", " FROM singer"]


def asked_to_stream(body: bytes) -> bool:
    try:
        payload = orjson.loads(body)
    except orjson.JSONDecodeError:
        return False
    return isinstance(payload, dict) and payload.get("stream") is True


def like_vllm(upstream: FakeUpstream) -> Fault:
    """A healthy vLLM: a JSON completion, or an SSE stream when the request asked for one."""
    plain, streamed = faults.ok(HEALTHY_SQL), faults.stream_ok(HEALTHY_STREAM)

    async def fault(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> bool:
        # The fake appends the request and calls this without yielding in between, so [-1] is this request's.
        script = streamed if asked_to_stream(upstream.requests[-1]) else plain
        keep_open: bool = await script(reader, writer)
        return keep_open

    return fault


class Gate:
    """Holds upstream answers until opened from any thread (the fake runs its own event loop)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._opened = False
        self._waiters: list[tuple[asyncio.AbstractEventLoop, asyncio.Future[None]]] = []
        self.waiting = 0

    def open(self) -> None:
        with self._lock:
            self._opened = True
            waiters, self._waiters = self._waiters, []
        for loop, future in waiters:
            loop.call_soon_threadsafe(_resolve, future)

    @property
    def is_open(self) -> bool:
        return self._opened

    async def until_open_or_client_gone(self, reader: asyncio.StreamReader) -> bool:
        """True when the gate opened, False when the gateway hung up first."""
        loop = asyncio.get_running_loop()
        opened: asyncio.Future[None] = loop.create_future()
        with self._lock:
            if self._opened:
                return True
            self._waiters.append((loop, opened))
            self.waiting += 1
        gone: asyncio.Future[Any] = asyncio.ensure_future(reader.read())
        waiting: list[asyncio.Future[Any]] = [opened, gone]
        try:
            await asyncio.wait(waiting, return_when=asyncio.FIRST_COMPLETED)
        finally:
            gone.cancel()
            with self._lock:
                self.waiting -= 1
        return opened.done()


def _resolve(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


def held(gate: Gate, upstream: FakeUpstream) -> Fault:
    """A slow but finite vLLM: a plain answer waits for the gate; a stream sends its first frame, then waits."""
    frames = faults.sse_frames(HEALTHY_STREAM)

    async def fault(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> bool:
        if not asked_to_stream(upstream.requests[-1]):
            if not await gate.until_open_or_client_gone(reader):
                return False
            keep_open: bool = await faults.ok(HEALTHY_SQL)(reader, writer)
            return keep_open
        writer.write(faults.sse_head() + faults.chunk(frames[0]))
        await writer.drain()
        if not await gate.until_open_or_client_gone(reader):
            return False
        for frame in [*frames[1:], b"data: [DONE]\n\n"]:
            writer.write(faults.chunk(frame))
        writer.write(b"0\r\n\r\n")
        await writer.drain()
        return True

    return fault


def _partial_json_answer() -> tuple[bytes, bytes]:
    """Headers promising a whole completion body, and the first half of that body."""
    body = orjson.dumps(faults.completion_body(HEALTHY_SQL))
    head = f"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {len(body)}\r\n\r\n".encode()
    return head, body[: len(body) // 2]


def stall_mid_body() -> Fault:
    """A plain answer whose body stops half-way and never resumes (until the gateway hangs up)."""

    async def fault(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> bool:
        head, half = _partial_json_answer()
        writer.write(head + half)
        await writer.drain()
        await faults.until_released_or_client_gone(reader, None)
        return False

    return fault


def truncated_body() -> Fault:
    """A plain answer cut off half-way by the upstream closing its connection."""

    async def fault(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> bool:
        head, half = _partial_json_answer()
        writer.write(head + half)
        await writer.drain()
        writer.close()
        return False

    return fault


def reset_mid_body() -> Fault:
    """A plain answer whose connection is reset half-way through the body."""

    async def fault(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> bool:
        head, half = _partial_json_answer()
        writer.write(head + half)
        await writer.drain()
        writer.transport.abort()
        return False

    return fault


def garbage_frame() -> Fault:
    """A stream whose second frame is not JSON."""
    frames = faults.sse_frames(HEALTHY_STREAM)
    return faults.stream([frames[0], b"data: {this is not json\n\n", *frames[1:]])


class BusyCounter:
    """How many upstream requests are inside a script right now: one left busy after its client was answered is
    a connection the gateway never hung up."""

    def __init__(self) -> None:
        self.busy = 0

    def track(self, fault: Fault) -> Fault:
        async def tracked(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> bool:
            self.busy += 1
            try:
                keep_open: bool = await fault(reader, writer)
                return keep_open
            finally:
                self.busy -= 1

        return tracked


class _FakeOnPort(FakeUpstream):
    """The fake, bound to a port chosen before it started (to bring a 'down' upstream back on its address)."""

    def __init__(self, port: int) -> None:
        super().__init__()
        self._wanted_port = port

    async def _start(self) -> None:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", self._wanted_port)
        self.port = self._server.sockets[0].getsockname()[1]


Availability = Literal["up", "down", "clogged"]


@dataclass(frozen=True)
class ForFake:
    """A script that needs the fake it runs in (to read the request it answers), built once the fake exists."""

    build: Callable[[FakeUpstream], Fault]


Script = Fault | ForFake
HEALTHY = ForFake(like_vllm)  # in a script list: answer like a healthy vLLM from here on


@dataclass
class ScriptedUpstream:
    """One upstream address whose behaviour a run scripts: a fake answering `scripts` (each request takes the next
    one, the last one repeats), nothing listening ('down'), or a listener whose accept queue is full ('clogged',
    so connects time out). `heal()` turns any of them into a healthy vLLM on the same address."""

    availability: Availability
    scripts: list[Script]
    port: int = 0
    fake: FakeUpstream | None = None
    counter: BusyCounter = field(default_factory=BusyCounter)
    _clog: list[socket.socket] = field(default_factory=list)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def requests_seen(self) -> int:
        return len(self.fake.requests) if self.fake is not None else 0

    @property
    def open_connections(self) -> int:
        return self.fake.open_connections if self.fake is not None else 0

    @property
    def busy(self) -> int:
        return self.counter.busy

    def start(self) -> ScriptedUpstream:
        if self.availability == "up":
            self.fake = _FakeOnPort(0)
            self.fake.faults = [self.counter.track(script.build(self.fake) if isinstance(script, ForFake) else script)
                                for script in self.scripts]
            self.fake.start()
            self.port = self.fake.port
        elif self.availability == "down":
            self.port = free_port()
        else:
            self._clog = clogged_listener()
            self.port = self._clog[0].getsockname()[1]
        return self

    def heal(self) -> None:
        if self.fake is None:
            for sock in self._clog:
                sock.close()
            self._clog = []
            self.fake = _FakeOnPort(self.port).start()
        self.fake.faults = [self.counter.track(like_vllm(self.fake))]

    def stop(self) -> None:
        for sock in self._clog:
            sock.close()
        if self.fake is not None:
            self.fake.stop()

    def wait_idle(self, deadline_s: float) -> int:
        """Wait until no request is left inside a script; return how many still are at the deadline."""
        with contextlib.suppress(TimeoutError):
            wait_for(lambda: self.busy == 0, "the upstream requests to end", deadline_s)
        return self.busy


@contextlib.contextmanager
def scripted_upstream(availability: Availability = "up", *scripts: Script) -> Iterator[ScriptedUpstream]:
    upstream = ScriptedUpstream(availability, list(scripts)).start()
    try:
        yield upstream
    finally:
        upstream.stop()


def healthy_upstream() -> contextlib.AbstractContextManager[ScriptedUpstream]:
    """A fake that answers every request like a healthy vLLM, from the first one."""
    return scripted_upstream("up", HEALTHY)


def clogged_listener() -> list[socket.socket]:
    """A listening socket with a backlog of 0 and its accept queue filled: further SYNs are dropped (Linux), so a
    connect times out instead of being refused. Returns the listener first, then the queued client sockets."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(0)
    port = listener.getsockname()[1]
    sockets = [listener]
    for _ in range(8):
        filler = socket.socket()
        filler.settimeout(0.2)
        try:
            filler.connect(("127.0.0.1", port))
        except OSError:
            filler.close()
            return sockets  # the queue is full
        sockets.append(filler)
    for sock in sockets:
        sock.close()
    raise RuntimeError("could not fill the accept queue of a listener with 8 connections")
