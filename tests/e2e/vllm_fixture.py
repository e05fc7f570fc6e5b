"""Session fixtures for real vLLM on CPU: the tiny trained SQL model and a server on a free 127.0.0.1 port.

Wire them in with ``pytest_plugins = ["tests.e2e.vllm_fixture"]`` in ``tests/conftest.py``; the helpers below
also work outside pytest fixtures (benchmarks, the gateway's end-to-end tests).
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

import pytest

from launch.vllm_server import (
    DEFAULT_SERVED_MODEL_NAME,
    VLLM_PYTHON_ENV,
    LaunchError,
    LaunchOptions,
    RunningVllm,
    running_vllm,
)
from tests.servers import free_port

REPO_ROOT = Path(__file__).resolve().parents[2]
TINY_MODEL_DIR = REPO_ROOT / ".cache" / "tiny-sql-model"
KV_CACHE_MEMORY = "256M"
MAX_MODEL_LEN = 1024
# Measured on 2 shared cores: ~40 s to train, ~40 s to the first generation. Generous: others share the cores.
STARTUP_DEADLINE_S = 300.0
TRAINING_TIMEOUT_S = 900.0
PORT_ATTEMPTS = 3


def vllm_python() -> Path:
    """The interpreter with vLLM: $SQLGATE_VLLM_PYTHON, else the repository's .venv-vllm."""
    configured = os.environ.get(VLLM_PYTHON_ENV)
    python = Path(configured) if configured else REPO_ROOT / ".venv-vllm" / "bin" / "python"
    if not os.access(python, os.X_OK):
        pytest.fail(
            f"no vLLM Python at {python}: create .venv-vllm (make install) or set {VLLM_PYTHON_ENV}, "
            "or deselect these tests with -m 'not e2e'"
        )
    return python


def build_tiny_model(out_dir: Path = TINY_MODEL_DIR) -> Path:
    """Train the tiny SQL model into `out_dir`, or reuse it when its fingerprint matches."""
    try:
        build = subprocess.run(
            [str(vllm_python()), "-m", "launch.tiny_model", str(out_dir)],
            cwd=REPO_ROOT,
            capture_output=True,
            text=True,
            timeout=TRAINING_TIMEOUT_S,
            check=False,
        )
    except subprocess.TimeoutExpired:
        pytest.fail(f"training the tiny model took longer than {TRAINING_TIMEOUT_S:.0f} s")
    if build.returncode != 0:
        tail = "\n".join((build.stdout + build.stderr).splitlines()[-40:])
        pytest.fail(f"building the tiny model failed (exit {build.returncode}):\n{tail}")
    return out_dir


def cpu_options(model_dir: Path, port: int, scratch_dir: Path, served_model_name: str,
                extra_args: tuple[str, ...] = ()) -> LaunchOptions:
    """How the tests run vLLM: CPU build, small KV cache, eager, every core."""
    return LaunchOptions(
        model=str(model_dir),
        target="cpu",
        port=port,
        served_model_name=served_model_name,
        max_model_len=MAX_MODEL_LEN,
        kv_cache_memory=KV_CACHE_MEMORY,
        python=str(vllm_python()),
        scratch_dir=str(scratch_dir),
        extra_args=extra_args,
    )


@contextmanager
def vllm_cpu_server(
    model_dir: Path, log_dir: Path, served_model_name: str = DEFAULT_SERVED_MODEL_NAME,
    startup_deadline_s: float = STARTUP_DEADLINE_S, extra_args: tuple[str, ...] = (),
) -> Iterator[RunningVllm]:
    """Start real vLLM on CPU, wait until it generates, yield it, stop it with its whole process group."""
    with ExitStack() as stack:
        # vLLM leaves ~150 MB in TMPDIR: a folder removed at the end, not one pytest keeps for days.
        scratch = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="sqlgate-vllm-")))
        server: RunningVllm | None = None
        # A free port can be taken by someone else before vLLM binds it: retry on a fresh one.
        for attempt in range(1, PORT_ATTEMPTS + 1):
            log_path = log_dir / f"vllm-{attempt}.log"
            options = cpu_options(model_dir, free_port(), scratch, served_model_name, extra_args)
            try:
                server = stack.enter_context(running_vllm(options, log_path, startup_deadline_s))
                break
            except LaunchError as error:
                if error.reason == "port_in_use" and attempt < PORT_ATTEMPTS:
                    continue
                print(f"vLLM log: {log_path}", file=sys.stderr)
                pytest.fail(f"vLLM did not start ({error.reason}): {error}")
        assert server is not None
        yield server


@pytest.fixture(scope="session")
def tiny_sql_model() -> Path:
    """The tiny Qwen2 model that answers TAUGHT_EXAMPLES exactly (built once, cached in .cache/)."""
    return build_tiny_model()


@pytest.fixture(scope="session")
def vllm_server(tiny_sql_model: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningVllm]:
    """Real vLLM on CPU serving the tiny model as the gateway's default upstream model name."""
    with vllm_cpu_server(tiny_sql_model, tmp_path_factory.mktemp("vllm")) as server:
        yield server
