"""A minimal keep-alive HTTP/1.1 client over asyncio streams, for timing sub-millisecond differences: it spends a
few tens of microseconds per request where httpx spends several hundred, so the client's own noise stays small
next to the gateway overhead being measured. Plain (non-chunked) responses only."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from urllib.parse import urlsplit

# uvicorn closes keep-alive connections idle for 5 s; reusing one then fails, so older ones are not reused.
MAX_IDLE_S = 4.0


@dataclass(frozen=True)
class ProbeResponse:
    status: int
    headers: dict[str, str]
    body: bytes
    latency_s: float


class ProbeClient:
    """A pool of keep-alive connections to one origin; a request takes an idle connection or opens one."""

    def __init__(self, base_url: str, timeout_s: float = 30.0) -> None:
        parts = urlsplit(base_url)
        self.host = parts.hostname or "127.0.0.1"
        self.port = parts.port or 80
        self._host_header = f"{self.host}:{self.port}"
        self._idle: list[tuple[asyncio.StreamReader, asyncio.StreamWriter, float]] = []
        self._timeout_s = timeout_s

    async def request(self, method: str, path: str, body: bytes = b"",
                      headers: dict[str, str] | None = None) -> ProbeResponse:
        head = [f"{method} {path} HTTP/1.1", f"host: {self._host_header}", f"content-length: {len(body)}"]
        if body:
            head.append("content-type: application/json")
        head.extend(f"{name}: {value}" for name, value in (headers or {}).items())
        raw = ("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + body
        started = time.perf_counter()
        async with asyncio.timeout(self._timeout_s):
            connection = self._take_idle()
            reused = connection is not None
            if connection is None:
                connection = await asyncio.open_connection(self.host, self.port)
            try:
                status_line, response_headers, response_body = await _exchange(connection, raw)
            except (asyncio.IncompleteReadError, ConnectionError):
                if not reused:
                    raise
                # The server closed a keep-alive connection that sat idle (uvicorn: after 5 s): open a new one.
                connection[1].close()
                connection = await asyncio.open_connection(self.host, self.port)
                status_line, response_headers, response_body = await _exchange(connection, raw)
            latency = time.perf_counter() - started
        writer = connection[1]
        if response_headers.get("connection", "").lower() == "close":
            writer.close()
        else:
            self._idle.append((*connection, time.monotonic()))
        return ProbeResponse(int(status_line.split(" ", 2)[1]), response_headers, response_body, latency)

    def _take_idle(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter] | None:
        while self._idle:
            reader, writer, last_used = self._idle.pop()
            if time.monotonic() - last_used < MAX_IDLE_S:
                return reader, writer
            writer.close()
        return None

    async def aclose(self) -> None:
        for _, writer, _ in self._idle:
            writer.close()
        self._idle.clear()


async def _exchange(connection: tuple[asyncio.StreamReader, asyncio.StreamWriter], raw: bytes
                    ) -> tuple[str, dict[str, str], bytes]:
    reader, writer = connection
    writer.write(raw)
    return await _read_response(reader)


async def _read_response(reader: asyncio.StreamReader) -> tuple[str, dict[str, str], bytes]:
    head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1")
    status_line, *lines = head[:-4].split("\r\n")
    headers: dict[str, str] = {}
    for line in lines:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    if "content-length" not in headers:
        raise ValueError(f"response without content-length ({status_line})")
    body = await reader.readexactly(int(headers["content-length"]))
    return status_line, headers, body
