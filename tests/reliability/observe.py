"""What the reliability runs read back: SSE bodies judged frame by frame, the gateway's Prometheus text, and a
process's resident memory and open files from /proc."""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from collections import Counter
from dataclasses import dataclass
from typing import Any, Literal

import httpx
import orjson
from prometheus_client.parser import text_string_to_metric_families

DONE = "[DONE]"


@dataclass(frozen=True)
class StreamVerdict:
    """One SSE body: where it ended and what is wrong with its framing (empty `problems` = well formed)."""

    frames: int
    terminal: Literal["final", "error"] | None
    error_code: str | None
    problems: tuple[str, ...]

    @property
    def well_formed(self) -> bool:
        return not self.problems


def read_stream(text: str) -> StreamVerdict:
    """Exactly one terminal frame (the final chunk, carrying `sql`, or an error), then only a usage chunk, then
    exactly one `[DONE]` as the last frame."""
    problems: list[str] = []
    data: list[str] = []
    for event in text.split("\n\n"):
        lines = [line for line in event.split("\n") if line and not line.startswith(":")]
        if not lines:
            continue
        if len(lines) != 1 or not lines[0].startswith("data: "):
            problems.append(f"not a single data line: {event[:80]!r}")
            continue
        data.append(lines[0][len("data: "):])
    done_at = [index for index, item in enumerate(data) if item == DONE]
    if len(done_at) != 1:
        problems.append(f"{len(done_at)} [DONE] frames")
    elif done_at[0] != len(data) - 1:
        problems.append("frames after [DONE]")
    payloads: list[dict[str, Any]] = []
    for item in data:
        if item == DONE:
            continue
        try:
            payload = orjson.loads(item)
        except orjson.JSONDecodeError:
            problems.append(f"frame is not JSON: {item[:80]!r}")
            continue
        if not isinstance(payload, dict):
            problems.append("frame is not an object")
            continue
        payloads.append(payload)
    terminal_at = [index for index, payload in enumerate(payloads) if "error" in payload or "sql" in payload]
    terminal: Literal["final", "error"] | None = None
    error_code: str | None = None
    if len(terminal_at) != 1:
        problems.append(f"{len(terminal_at)} terminal frames")
    else:
        last = payloads[terminal_at[0]]
        if "error" in last:
            terminal = "error"
            error = last["error"]
            error_code = error.get("code") if isinstance(error, dict) else None
        else:
            terminal = "final"
        after = payloads[terminal_at[0] + 1:]
        if any(payload.get("choices") != [] or "usage" not in payload for payload in after):
            problems.append("frames other than usage after the terminal frame")
    return StreamVerdict(frames=len(data), terminal=terminal, error_code=error_code, problems=tuple(problems))


def error_code_of(body: bytes) -> str | None:
    """The `error.code` of an OpenAI-shaped error body, or None."""
    try:
        payload = orjson.loads(body)
    except orjson.JSONDecodeError:
        return None
    error = payload.get("error") if isinstance(payload, dict) else None
    code = error.get("code") if isinstance(error, dict) else None
    return code if isinstance(code, str) else None


# ---- Prometheus text --------------------------------------------------------------------------------------------

def samples(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """Every sample of a Prometheus exposition, keyed by name and labels."""
    found: dict[tuple[str, frozenset[tuple[str, str]]], float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found[(sample.name, frozenset(sample.labels.items()))] = float(sample.value)
    return found


def requests_by_route_status(text: str) -> Counter[tuple[str, str]]:
    """`sqlgate_requests_total` as a counter of (route, status)."""
    counts: Counter[tuple[str, str]] = Counter()
    for (name, labels), value in samples(text).items():
        if name == "sqlgate_requests_total":
            label = dict(labels)
            counts[(label["route"], label["status"])] = int(value)
    return counts


def metric_total(text: str, name: str) -> float:
    """The sum of every sample called `name` (all label sets)."""
    return sum(value for (sample_name, _), value in samples(text).items() if sample_name == name)


# ---- a process seen through /proc -------------------------------------------------------------------------------

@dataclass(frozen=True)
class ProcessSnapshot:
    rss_kib: int
    open_files: int
    sockets: int


def snapshot(pid: int) -> ProcessSnapshot:
    """VmRSS and the open file descriptors (and how many are sockets) of a live process."""
    rss_kib = 0
    with open(f"/proc/{pid}/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                rss_kib = int(line.split()[1])
    fd_dir = f"/proc/{pid}/fd"
    targets = []
    for fd in os.listdir(fd_dir):
        try:
            targets.append(os.readlink(f"{fd_dir}/{fd}"))
        except OSError:
            continue  # closed while listing
    return ProcessSnapshot(rss_kib=rss_kib, open_files=len(targets),
                           sockets=sum(target.startswith("socket:") for target in targets))


# ---- one request as a client saw it -----------------------------------------------------------------------------

@dataclass(frozen=True)
class Outcome:
    """A finished request: status (None when no answer came), error code (from the body, or in-band for a
    stream), the stream's verdict, and whether it ran past its deadline."""

    status: int | None
    code: str | None
    latency_s: float
    stream: StreamVerdict | None = None
    hung: bool = False
    transport_error: str | None = None
    retry_after: str | None = None
    body: bytes = b""

    @property
    def in_band_code(self) -> str | None:
        return self.stream.error_code if self.stream is not None else None

    @property
    def server_error(self) -> bool:
        """A 5xx the contract does not define (only 502/503/504 name upstream faults), or an in-band one."""
        status_5xx = self.status is not None and self.status >= 500 and self.status not in (502, 503, 504)
        return status_5xx or self.code == "internal_error" or self.in_band_code == "internal_error"


async def call(client: httpx.AsyncClient, method: str, path: str, *, deadline_s: float, json_body: Any = None,
               content: bytes | None = None, headers: dict[str, str] | None = None) -> Outcome:
    """Send one request with an `httpx.AsyncClient`, reading a streamed body to its end, within `deadline_s`."""
    started = time.perf_counter()
    try:
        async with asyncio.timeout(deadline_s):
            async with client.stream(method, path, json=json_body, content=content, headers=headers) as response:
                body = await response.aread()
    except TimeoutError:
        return Outcome(status=None, code=None, latency_s=time.perf_counter() - started, hung=True)
    except httpx.TransportError as exc:
        return Outcome(status=None, code=None, latency_s=time.perf_counter() - started,
                       transport_error=type(exc).__name__)
    latency = time.perf_counter() - started
    is_stream = response.headers.get("content-type", "").startswith("text/event-stream")
    verdict = read_stream(body.decode("utf-8", "replace")) if is_stream else None
    code = verdict.error_code if verdict is not None else error_code_of(body)
    return Outcome(status=response.status_code, code=code, latency_s=latency, stream=verdict,
                   retry_after=response.headers.get("retry-after"), body=body)


@dataclass(frozen=True)
class Connections:
    """A process's TCP sockets on loopback, by role."""

    listening: int
    from_clients: int  # accepted on `server_port`
    to_upstream: int  # connected to `upstream_port`
    other: int


def connections(pid: int, server_port: int, upstream_port: int) -> Connections:
    """Classify the process's sockets through /proc/PID/fd (inodes) and /proc/PID/net/tcp (ports, state)."""
    inodes = set()
    fd_dir = f"/proc/{pid}/fd"
    for fd in os.listdir(fd_dir):
        with contextlib.suppress(OSError):
            target = os.readlink(f"{fd_dir}/{fd}")
            if target.startswith("socket:["):
                inodes.add(target[len("socket:["):-1])
    listening = from_clients = to_upstream = other = 0
    for table in ("tcp", "tcp6"):
        with contextlib.suppress(FileNotFoundError), open(f"/proc/{pid}/net/{table}", encoding="ascii") as rows:
            next(rows)
            for row in rows:
                fields = row.split()
                if fields[9] not in inodes:
                    continue
                local_port = int(fields[1].rsplit(":", 1)[1], 16)
                remote_port = int(fields[2].rsplit(":", 1)[1], 16)
                if fields[3] == "0A":
                    listening += 1
                elif local_port == server_port:
                    from_clients += 1
                elif remote_port == upstream_port:
                    to_upstream += 1
                else:
                    other += 1
    return Connections(listening, from_clients, to_upstream, other)
