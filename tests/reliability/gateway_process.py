"""The gateway as its own process, the way it is deployed: `python -m uvicorn gateway.app:create_app --factory` or
`python -m gateway`, configured only through SQLGATE_* variables, its stdout and stderr kept in files."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import httpx

from tests.reliability.observe import ProcessSnapshot, snapshot
from tests.servers import free_port, wait_for

REPO = Path(__file__).resolve().parents[2]
START_DEADLINE_S = 60.0
Launcher = Literal["uvicorn", "gateway"]


@dataclass
class GatewayProcess:
    process: subprocess.Popen[bytes]
    port: int
    logs: Path

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int:
        return self.process.pid

    def snapshot(self) -> ProcessSnapshot:
        return snapshot(self.pid)

    def accepting(self) -> bool:
        """Whether a new TCP connection to the gateway's port is accepted right now."""
        with socket.socket() as sock:
            sock.settimeout(1.0)
            return sock.connect_ex(("127.0.0.1", self.port)) == 0

    def output(self) -> str:
        """Everything the process wrote to stdout and stderr so far."""
        return "".join(path.read_text(encoding="utf-8", errors="replace")
                       for path in (self.logs / "stdout.log", self.logs / "stderr.log"))

    def terminate(self) -> float:
        """Send SIGTERM; returns the monotonic time it was sent."""
        sent = time.monotonic()
        self.process.send_signal(signal.SIGTERM)
        return sent

    def wait_exit(self, deadline_s: float) -> int | None:
        """The exit status (negative: killed by that signal), or None if it is still running at the deadline."""
        try:
            return self.process.wait(timeout=deadline_s)
        except subprocess.TimeoutExpired:
            return None


def gateway_env(port: int, **settings: str) -> dict[str, str]:
    """The parent's environment without any SQLGATE_* variable, plus these settings (names without the prefix)."""
    env = {name: value for name, value in os.environ.items() if not name.startswith("SQLGATE_")}
    # No background readiness probe unless a test asks: it would add requests the fakes count.
    env["SQLGATE_READY_INTERVAL_S"] = "0"
    env.update({f"SQLGATE_{name.upper()}": value for name, value in settings.items()})
    env["SQLGATE_PORT"] = str(port)
    env["SQLGATE_HOST"] = "127.0.0.1"
    env["PYTHONPATH"] = str(REPO)
    return env


@contextlib.contextmanager
def gateway_process(launcher: Launcher = "uvicorn", **settings: str) -> Iterator[GatewayProcess]:
    """Start the gateway on a free loopback port and wait for /health; on exit, stop it (SIGTERM, then SIGKILL)
    unless the caller already did."""
    port = free_port()
    env = gateway_env(port, **settings)
    if launcher == "uvicorn":
        command = [sys.executable, "-m", "uvicorn", "gateway.app:create_app", "--factory", "--host", "127.0.0.1",
                   "--port", str(port), "--no-access-log", "--log-level", "warning",
                   "--http", "gateway.http_server:LimitedHttpToolsProtocol"]  # the documented way keeps the limits
    else:
        command = [sys.executable, "-m", "gateway"]
    with tempfile.TemporaryDirectory(prefix="sqlgate-gateway-") as folder:
        logs = Path(folder)
        # The run folder (the default SQLite store) is this process's own, never the checkout's .run/.
        env.setdefault("SQLGATE_RUN_DIR", folder)
        with (logs / "stdout.log").open("wb") as stdout, (logs / "stderr.log").open("wb") as stderr:
            process = subprocess.Popen(command, cwd=REPO, env=env, stdout=stdout, stderr=stderr)
        running = GatewayProcess(process, port, logs)
        try:
            wait_for(lambda: _healthy(running), "the gateway process to answer /health", START_DEADLINE_S)
            yield running
        finally:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
                try:
                    process.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()


def _healthy(running: GatewayProcess) -> bool:
    if running.process.poll() is not None:
        raise RuntimeError(f"the gateway exited with {running.process.returncode}:\n{running.output()[-3000:]}")
    try:
        return httpx.get(f"{running.base_url}/health", timeout=1.0).status_code == 200
    except httpx.TransportError:
        return False
