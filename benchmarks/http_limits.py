"""HTTP limits measured on real processes: a 32 MB request header and clients that send one byte a second (headers,
then body), against plain uvicorn+httptools (what served the gateway before) and `python -m gateway` (the
production entry point, with gateway/http_server.py). Also the cost of the protocol: the same uvicorn command with
`--http httptools` and with the gateway's protocol, /health on a keep-alive connection, in alternating batches so
that the (shared, busy) machine's drift falls on both alike.

    PYTHONPATH=$PWD .venv/bin/python -m benchmarks.http_limits --out reports/http_limits.json
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx

from benchmarks.results import latency_ms
from tests.servers import free_port, wait_for

REPO = Path(__file__).resolve().parents[1]
KEY = "sk-http-limits-bench-0123456789"
HEADER_BYTES = 32 * 1024 * 1024
OBSERVE_S = 30.0  # how long a slow client is watched before it counts as "held"
HEALTH_BATCHES, HEALTH_BATCH = 20, 50

SERVERS = {
    "uvicorn_httptools_before": [sys.executable, "-m", "uvicorn", "gateway.app:create_app", "--factory",
                                 "--http", "httptools", "--log-level", "warning", "--no-access-log"],
    "python_m_gateway": [sys.executable, "-m", "gateway"],
}
PROTOCOLS = {"httptools": "httptools", "gateway_limited": "gateway.http_server:LimitedHttpToolsProtocol"}


@contextmanager
def server(command: list[str]) -> Iterator[int]:
    port = free_port()
    env = {**os.environ, "PYTHONPATH": str(REPO), "SQLGATE_API_KEYS": KEY, "SQLGATE_PORT": str(port),
           "SQLGATE_UPSTREAM_URL": f"http://127.0.0.1:{free_port()}", "SQLGATE_READY_INTERVAL_S": "0",
           "SQLGATE_LOG_LEVEL": "error"}
    if "uvicorn" in command:
        command = [*command, "--port", str(port)]
    process = subprocess.Popen(command, cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        def up() -> bool:
            try:
                return httpx.get(f"http://127.0.0.1:{port}/health", timeout=2).status_code == 200
            except httpx.HTTPError:
                return False

        wait_for(up, "the server", deadline_s=120)
        yield port
    finally:
        process.terminate()
        process.wait(timeout=30)


def _status(response: bytes) -> int | None:
    parts = response.split(b" ", 2)
    return int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else None


def _read_all(sock: socket.socket) -> bytes:
    chunks = []
    try:
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    except (ConnectionResetError, TimeoutError):
        pass
    return b"".join(chunks)


def big_header(port: int) -> dict[str, Any]:
    started = time.monotonic()
    with socket.create_connection(("127.0.0.1", port), timeout=OBSERVE_S) as sock:
        sock.sendall(b"GET /v1/models HTTP/1.1\r\nhost: gateway\r\nx-padding: ")
        sent, chunk = 0, b"a" * 65536
        try:
            while sent < HEADER_BYTES:
                sock.sendall(chunk)
                sent += len(chunk)
            sock.sendall(b"\r\n\r\n")
        except (BrokenPipeError, ConnectionResetError):
            pass
        response = _read_all(sock)
    # What the client got into its socket before the server closed (kernel buffers included), not what was read.
    return {"header_bytes_sent_before_close": sent, "accepted_all_32_mb": sent >= HEADER_BYTES,
            "status": _status(response), "seconds": round(time.monotonic() - started, 2)}


def slow_client(port: int, head: bytes, drip: bytes) -> dict[str, Any]:
    """Send `head`, then `drip` one byte a second; how long until the server closes (capped at OBSERVE_S)."""
    started = time.monotonic()
    with socket.create_connection(("127.0.0.1", port), timeout=OBSERVE_S + 5) as sock:
        sock.sendall(head)
        sock.settimeout(1.0)
        response = b""
        for byte in drip:
            if time.monotonic() - started > OBSERVE_S:
                break
            try:
                sock.sendall(bytes([byte]))
                data = sock.recv(65536)
            except TimeoutError:
                continue
            except (BrokenPipeError, ConnectionResetError):
                break
            response += data
            if not data:
                break
        held = time.monotonic() - started
    return {"held_s": round(held, 1), "closed_by_server": held < OBSERVE_S, "status": _status(response)}


def protocol_cost() -> dict[str, Any]:
    """/health latency through each protocol, batches alternating between the two servers."""
    base = [sys.executable, "-m", "uvicorn", "gateway.app:create_app", "--factory", "--log-level", "warning",
            "--no-access-log", "--http"]
    times: dict[str, list[float]] = {name: [] for name in PROTOCOLS}
    with server([*base, PROTOCOLS["httptools"]]) as plain, server([*base, PROTOCOLS["gateway_limited"]]) as limited:
        ports = {"httptools": plain, "gateway_limited": limited}
        clients = {name: httpx.Client(base_url=f"http://127.0.0.1:{port}") for name, port in ports.items()}
        try:
            for batch in range(HEALTH_BATCHES):
                for name, client in clients.items():
                    for _ in range(HEALTH_BATCH):
                        started = time.perf_counter()
                        client.get("/health")
                        if batch:  # the first batch warms up
                            times[name].append(time.perf_counter() - started)
        finally:
            for client in clients.values():
                client.close()
    return {name: latency_ms(values) for name, values in times.items()}


def measure(port: int) -> dict[str, Any]:
    results: dict[str, Any] = {}
    body_head = (f"POST /v1/sql HTTP/1.1\r\nhost: gateway\r\nauthorization: Bearer {KEY}\r\n"
                 "content-type: application/json\r\ncontent-length: 100\r\n\r\n").encode()
    jobs = {
        "slow_headers_1_byte_per_s": (b"GET /health HTTP/1.1\r\nhost: gateway\r\nx-slow: ", b"a" * 100),
        "slow_body_1_byte_per_s": (body_head, b" " * 100),
    }
    threads = [threading.Thread(target=lambda n=name, a=args: results.__setitem__(n, slow_client(port, *a)))
               for name, args in jobs.items()]
    for thread in threads:
        thread.start()
    results["header_32_mb"] = big_header(port)
    for thread in threads:
        thread.join()
    return results


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", type=Path, default=REPO / "reports" / "http_limits.json")
    args = parser.parse_args()
    report: dict[str, Any] = {"command": "PYTHONPATH=$PWD .venv/bin/python -m benchmarks.http_limits",
                              "observe_s": OBSERVE_S, "servers": {}}
    for name, command in SERVERS.items():
        with server(command) as port:
            report["servers"][name] = measure(port)
        print(name, json.dumps(report["servers"][name]), flush=True)
    report["health_keepalive_ms_by_protocol"] = protocol_cost()
    print(json.dumps(report["health_keepalive_ms_by_protocol"]), flush=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
