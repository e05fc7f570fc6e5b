"""Servers the benchmarks start as child processes (fake upstream, gateway, vLLM): each in its own process group
with its output in a log file, ready when an HTTP route answers, stopped with its whole group."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass(frozen=True)
class ChildServer:
    name: str
    base_url: str
    process: subprocess.Popen[bytes]
    log_path: Path
    startup_s: float


def _answers(url: str, timeout_s: float) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=timeout_s) as response:
            return int(response.status) == 200
    except (urllib.error.URLError, OSError, ValueError):
        return False


def stop_group(process: subprocess.Popen[bytes], grace_s: float = 15.0) -> None:
    """SIGTERM the child's process group, SIGKILL it if it lingers."""
    for sig, wait_s in ((signal.SIGTERM, grace_s), (signal.SIGKILL, 5.0)):
        if process.poll() is not None:
            break
        with suppress(ProcessLookupError):
            os.killpg(process.pid, sig)
        with suppress(subprocess.TimeoutExpired):
            process.wait(timeout=wait_s)
    # Workers of a pre-fork server may outlive their parent by a moment.
    with suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)


@contextmanager
def child_server(name: str, argv: Sequence[str], *, port: int, log_dir: Path, env: Mapping[str, str] | None = None,
                 ready_path: str = "/health", deadline_s: float = 60.0) -> Iterator[ChildServer]:
    """Start `argv`, wait until GET http://127.0.0.1:`port``ready_path` answers 200, yield, stop it."""
    log_dir.mkdir(parents=True, exist_ok=True)
    log_path = log_dir / f"{name}.log"
    base_url = f"http://127.0.0.1:{port}"
    started = time.monotonic()
    with log_path.open("wb") as log:
        process = subprocess.Popen(list(argv), cwd=REPO_ROOT, env=dict(env if env is not None else os.environ),
                                   stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                   start_new_session=True)
    try:
        deadline = started + deadline_s
        while not _answers(base_url + ready_path, timeout_s=2.0):
            if process.poll() is not None:
                raise RuntimeError(f"{name} exited with code {process.returncode}; log: {log_path}\n"
                                   + log_tail(log_path))
            if time.monotonic() > deadline:
                raise RuntimeError(f"{name} did not answer {ready_path} within {deadline_s:.0f} s; log: {log_path}\n"
                                   + log_tail(log_path))
            with suppress(subprocess.TimeoutExpired):
                process.wait(timeout=0.05)
        yield ChildServer(name, base_url, process, log_path, round(time.monotonic() - started, 2))
    finally:
        stop_group(process)


def log_tail(path: Path, lines: int = 30) -> str:
    try:
        return "\n".join(path.read_text(encoding="utf-8", errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


def exit_cleanly_on_sigterm() -> None:
    """`kill PID` of a benchmark runs its `finally` blocks, which stop the vLLM and gateway children it started:
    Python's default SIGTERM ends the process at once and leaves them running."""
    def _exit(signum: int, frame: object) -> None:
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, _exit)
