"""launch.stack (make up / down / status), run as a user runs it: `python -m launch.stack` in a subprocess, a
private run folder, free ports. Fake vLLM executables only inject start-up faults; the happy path runs real vLLM
on CPU with the tiny model and the real gateway."""

from __future__ import annotations

import json
import os
import socket
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from launch.stack import group_members, proc_stat, running
from launch.tiny_model import SINGER_EXAMPLE
from tests.servers import free_port

REPO_ROOT = Path(__file__).resolve().parents[1]
QUICK_TIMEOUT_S = 120
E2E_TIMEOUT_S = 1200

# A stand-in for vLLM's start-up: it records its pid, starts a child the way vLLM starts its engine core, then
# does what the fault asks. Called as `python -m vllm.entrypoints.openai.api_server --model ... --port N ...`.
FAKE_VLLM = """#!/usr/bin/env bash
echo $$ > "{record}/leader.pid"
sleep 300 &
echo $! > "{record}/child.pid"
{behaviour}
"""
DIES = 'echo "RuntimeError: simulated engine failure at start-up"; exit 3'
HANGS = "exec sleep 300"
# Answers like vLLM so `up` gets to the gateway; ignores everything else.
SERVES = f'exec {sys.executable} "{{record}}/serve.py" "$@"'
SERVE_PY = """
import json, sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

class Handler(BaseHTTPRequestHandler):
    def _answer(self, body):
        data = json.dumps(body).encode()
        self.send_response(200)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_POST(self):
        self.rfile.read(int(self.headers.get("content-length", 0)))
        self._answer({"id": "x", "object": "text_completion", "model": "qwen2.5-1.5b-sql",
                      "choices": [{"index": 0, "text": " x", "finish_reason": "length"}]})

    def do_GET(self):
        self._answer({"object": "list", "data": [{"id": "qwen2.5-1.5b-sql"}]})

    def log_message(self, *args):
        pass

port = int(sys.argv[sys.argv.index("--port") + 1])
ThreadingHTTPServer(("127.0.0.1", port), Handler).serve_forever()
"""


def clean_env(**extra: str) -> dict[str, str]:
    """Our environment without the operator's SQLGATE_* settings, plus `extra`."""
    env = {name: value for name, value in os.environ.items() if not name.startswith("SQLGATE_")}
    return {**env, **extra}


def stack(run_dir: Path, *args: str, env: dict[str, str] | None = None,
          timeout_s: float = QUICK_TIMEOUT_S) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "launch.stack", "--run-dir", str(run_dir), *args],
        cwd=REPO_ROOT, env=env or clean_env(), capture_output=True, text=True, timeout=timeout_s, check=False,
    )


def gone(pid: int) -> bool:
    return not running(proc_stat(pid))


@pytest.fixture
def model_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "model"
    folder.mkdir()
    (folder / "config.json").write_text("{}")
    return folder


def fake_vllm(tmp_path: Path, behaviour: str) -> tuple[Path, Path]:
    """An executable that `up` takes for the vLLM Python, and the folder where it records its pids."""
    record = tmp_path / "fake-record"
    record.mkdir()
    (record / "serve.py").write_text(SERVE_PY)
    executable = tmp_path / "fake-vllm-python"
    executable.write_text(FAKE_VLLM.format(record=record, behaviour=behaviour.format(record=record)))
    executable.chmod(0o755)
    return executable, record


def up_with_fake(tmp_path: Path, model_dir: Path, behaviour: str, *extra: str,
                 **env: str) -> tuple[subprocess.CompletedProcess[str], Path, Path]:
    executable, record = fake_vllm(tmp_path, behaviour)
    run_dir = tmp_path / "run"
    done = stack(
        run_dir, "up", "--model", str(model_dir), "--target", "cpu",
        "--gateway-port", str(free_port()), "--vllm-port", str(free_port()), *extra,
        env=clean_env(SQLGATE_VLLM_PYTHON=str(executable), **env),
    )
    return done, record, run_dir


def assert_nothing_left(record: Path, run_dir: Path) -> None:
    for name in ("leader.pid", "child.pid"):
        pid = int((record / name).read_text())
        assert gone(pid), f"{name} {pid} still runs"
    assert not (run_dir / "stack.json").exists()
    assert not (run_dir / "vllm.pid").exists()
    assert not (run_dir / "gateway.pid").exists()


def test_vllm_dying_at_start_up_is_reported_with_its_log_and_leaves_nothing(tmp_path: Path, model_dir: Path) -> None:
    done, record, run_dir = up_with_fake(tmp_path, model_dir, DIES)

    assert done.returncode == 1
    assert "vLLM did not come up: vLLM exited with code 3 before it could generate" in done.stderr
    assert "simulated engine failure at start-up" in done.stderr  # the log's tail, not just a code
    assert "Traceback" not in done.stderr
    # The child it left in its process group (as vLLM leaves its engine core) was stopped too.
    assert_nothing_left(record, run_dir)
    assert "simulated engine failure" in (run_dir / "vllm.log").read_text()


def test_vllm_never_ready_times_out_and_stops_its_whole_group(tmp_path: Path, model_dir: Path) -> None:
    done, record, run_dir = up_with_fake(tmp_path, model_dir, HANGS, "--vllm-ready-timeout", "1")

    assert done.returncode == 1
    assert "did not generate within 1 s" in done.stderr
    assert_nothing_left(record, run_dir)


def test_gateway_failing_at_start_up_stops_vllm_too(tmp_path: Path, model_dir: Path) -> None:
    done, record, run_dir = up_with_fake(
        tmp_path, model_dir, SERVES, SQLGATE_GENERATION_CONFIG=str(tmp_path / "missing.toml")
    )

    assert done.returncode == 1
    assert "the gateway exited with code 2 during start-up" in done.stderr
    assert "configuration error" in done.stderr and "missing.toml" in done.stderr
    assert_nothing_left(record, run_dir)


def test_a_taken_port_refuses_before_starting_anything(tmp_path: Path, model_dir: Path) -> None:
    executable, record = fake_vllm(tmp_path, SERVES)
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        done = stack(
            tmp_path / "run", "up", "--model", str(model_dir), "--target", "cpu",
            "--gateway-port", str(port), "--vllm-port", str(free_port()),
            env=clean_env(SQLGATE_VLLM_PYTHON=str(executable)),
        )

    assert done.returncode == 1
    assert f"port {port} on 127.0.0.1 (gateway) is already in use" in done.stderr
    assert not (record / "leader.pid").exists()
    assert not (tmp_path / "run" / "stack.json").exists()


def test_down_and_status_with_nothing_started(tmp_path: Path) -> None:
    status = stack(tmp_path / "run", "status")
    assert status.returncode == 3
    assert "not running" in status.stdout

    first, second = stack(tmp_path / "run", "down"), stack(tmp_path / "run", "down")
    assert first.returncode == second.returncode == 0
    assert "nothing to stop" in second.stdout


@pytest.fixture
def stranger() -> Iterator[subprocess.Popen[bytes]]:
    """A process we did not start through `up`, leading its own process group like vLLM does."""
    process = subprocess.Popen(["sleep", "300"], start_new_session=True)
    try:
        yield process
    finally:
        process.kill()
        process.wait(timeout=10)


def test_down_never_signals_a_process_that_reuses_a_recorded_pid(
    tmp_path: Path, stranger: subprocess.Popen[bytes]
) -> None:
    start = proc_stat(stranger.pid)
    assert start is not None
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    record = {"pid": stranger.pid, "start_ticks": start.start_ticks - 1, "command": ["vllm"],
              "url": "http://127.0.0.1:9", "log": str(run_dir / "vllm.log")}
    (run_dir / "stack.json").write_text(json.dumps({
        "model": "m", "model_folder": "m", "served_model_name": "m", "target": "cpu",
        "gateway_url": "http://127.0.0.1:9", "scratch_dir": None, "parts": {"vllm": record},
    }))
    (run_dir / "vllm.pid").write_text(f"{stranger.pid}\n")

    assert stack(run_dir, "status").returncode == 3
    done = stack(run_dir, "down")

    assert done.returncode == 0
    assert "now belongs to another process" in done.stderr
    assert stranger.poll() is None  # still alive: never signalled
    assert not (run_dir / "stack.json").exists() and not (run_dir / "vllm.pid").exists()


@pytest.mark.e2e
def test_up_status_down_with_real_vllm_and_gateway(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    gateway_port, vllm_port = free_port(), free_port()
    up = stack(run_dir, "up", "--model", "tiny", "--target", "cpu", "--gateway-port", str(gateway_port),
               "--vllm-port", str(vllm_port), timeout_s=E2E_TIMEOUT_S)
    state = json.loads((run_dir / "stack.json").read_text()) if (run_dir / "stack.json").exists() else {}
    groups = [part["pid"] for part in state.get("parts", {}).values()]
    processes: list[int] = []
    try:
        assert up.returncode == 0, up.stderr[-4000:]
        key = (run_dir / "api-key").read_text().strip()
        assert stat.S_IMODE((run_dir / "api-key").stat().st_mode) == 0o600
        assert f"API key (shown once, kept in {run_dir / 'api-key'}): {key}" in up.stdout
        assert f"curl -s http://127.0.0.1:{gateway_port}/v1/completions" in up.stdout
        assert f'OpenAI(base_url="http://127.0.0.1:{gateway_port}/v1"' in up.stdout
        assert key not in (run_dir / "api-keys.sha256").read_text()  # the gateway only sees the digest
        assert int((run_dir / "vllm.pid").read_text()) == state["parts"]["vllm"]["pid"]

        answer = httpx.post(
            f"http://127.0.0.1:{gateway_port}/v1/completions",
            headers={"authorization": f"Bearer {key}"},
            json={"model": "qwen2.5-1.5b-sql", "prompt": SINGER_EXAMPLE["question"],
                  "schema": SINGER_EXAMPLE["context"]},
            timeout=120,
        )
        assert answer.status_code == 200, answer.text
        assert answer.json()["choices"][0]["text"] == SINGER_EXAMPLE["answer"]

        status = stack(run_dir, "status")
        assert status.returncode == 0, status.stdout
        assert f"http://127.0.0.1:{vllm_port}" in status.stdout and "alive (/health: 200)" in status.stdout
        assert f"http://127.0.0.1:{gateway_port}" in status.stdout and "ready (/ready: 200)" in status.stdout

        again = stack(run_dir, "up", "--model", "tiny", "--target", "cpu", "--gateway-port", str(gateway_port),
                      "--vllm-port", str(vllm_port))
        assert again.returncode == 0 and "already up" in again.stdout
        assert "API key (shown once" not in again.stdout
        processes += [pid for group in groups for pid in group_members(group)]
        assert len(processes) > len(groups)  # vLLM's engine core runs in its group
    finally:
        down = stack(run_dir, "down")
    assert down.returncode == 0, down.stderr
    assert all(not group_members(group) for group in groups)
    assert all(gone(pid) for pid in processes)
    assert not list(run_dir.glob("*.pid")) and not (run_dir / "stack.json").exists()
    assert stack(run_dir, "status").returncode == 3
    assert stack(run_dir, "down").stdout.strip() == "nothing to stop"



def test_a_bad_business_hours_setting_refuses_before_starting_anything(tmp_path: Path, model_dir: Path) -> None:
    done, record, run_dir = up_with_fake(tmp_path, model_dir, SERVES, SQLGATE_BUSINESS_HOURS="mon-fri 8-18")
    assert done.returncode == 1
    assert "business-hours settings" in done.stderr and "SQLGATE_BUSINESS_HOURS 'mon-fri 8-18'" in done.stderr
    assert not (record / "leader.pid").exists()
    assert not (run_dir / "stack.json").exists()


def test_business_hours_add_a_scheduler_that_status_shows_and_down_stops(tmp_path: Path, model_dir: Path) -> None:
    done, record, run_dir = up_with_fake(tmp_path, model_dir, SERVES, SQLGATE_BUSINESS_HOURS="mon-sun 00:00-24:00",
                                         SQLGATE_AUTH_ENABLED="false")
    state = json.loads((run_dir / "stack.json").read_text()) if (run_dir / "stack.json").exists() else {}
    try:
        assert done.returncode == 0, done.stderr[-3000:]
        assert set(state["parts"]) == {"vllm", "gateway", "scheduler"}
        assert state["parts"]["scheduler"]["command"][1:4] == ["-m", "launch.scheduler", "run"]
        assert int((run_dir / "scheduler.pid").read_text()) == state["parts"]["scheduler"]["pid"]
        status = stack(run_dir, "status")
        assert f"scheduler running  pid {state['parts']['scheduler']['pid']}" in status.stdout, status.stdout
    finally:
        down = stack(run_dir, "down")
    assert down.returncode == 0, down.stderr
    assert all(gone(part["pid"]) for part in state.get("parts", {}).values())
    assert not list(run_dir.glob("*.pid"))
    assert_nothing_left(record, run_dir)
