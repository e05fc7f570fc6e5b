"""Real vLLM on CPU, started through launch.vllm_server, serving the tiny model it was taught SQL with."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from launch.tiny_model import (
    EOS_TOKEN,
    MARKER_FILE,
    TAUGHT_EXAMPLES,
    TaughtExample,
    cached_report,
    chat_messages,
    training_prompt,
)
from launch.vllm_server import (
    LaunchError,
    RunningVllm,
    read_log_tail,
    start_vllm,
    stop_vllm,
    wait_until_generates,
)
from tests.e2e.vllm_fixture import REPO_ROOT, build_tiny_model, cpu_options, vllm_python

pytestmark = pytest.mark.e2e

REQUEST_TIMEOUT_S = 60.0
EXAMPLE_IDS = [
    f"{index}-{example['answer'].split()[0].strip('`')}" for index, example in enumerate(TAUGHT_EXAMPLES)
]


@pytest.fixture
def held_port() -> Iterator[int]:
    """A loopback port that something else is listening on for the whole test."""
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        yield int(holder.getsockname()[1])


def greedy_completion(server: RunningVllm, prompt: str) -> dict[str, object]:
    response = httpx.post(
        f"{server.base_url}/v1/completions",
        json={
            "model": server.model,
            "prompt": prompt,
            "temperature": 0,
            "max_tokens": 256,
            "stop": [EOS_TOKEN],
        },
        timeout=REQUEST_TIMEOUT_S,
    )
    assert response.status_code == 200, response.text
    choice: dict[str, object] = response.json()["choices"][0]
    return choice


@pytest.mark.parametrize("example", TAUGHT_EXAMPLES, ids=EXAMPLE_IDS)
def test_completions_with_the_training_prompt_return_the_taught_sql_byte_for_byte(
    vllm_server: RunningVllm, example: TaughtExample
) -> None:
    choice = greedy_completion(vllm_server, training_prompt(example["question"], example["context"]))
    assert choice["text"] == example["answer"]
    assert choice["finish_reason"] == "stop"


@pytest.mark.parametrize("example", TAUGHT_EXAMPLES, ids=EXAMPLE_IDS)
def test_chat_completions_render_the_training_prompt_and_return_the_taught_sql(
    vllm_server: RunningVllm, example: TaughtExample
) -> None:
    response = httpx.post(
        f"{vllm_server.base_url}/v1/chat/completions",
        json={
            "model": vllm_server.model,
            "messages": chat_messages(example["question"], example["context"]),
            "temperature": 0,
            "max_tokens": 256,
        },
        timeout=REQUEST_TIMEOUT_S,
    )
    assert response.status_code == 200, response.text
    choice = response.json()["choices"][0]
    assert choice["message"]["content"] == example["answer"]
    assert choice["finish_reason"] == "stop"


def test_served_chat_template_tokenizes_exactly_like_the_training_prompt(vllm_server: RunningVllm) -> None:
    example = TAUGHT_EXAMPLES[0]
    literal = httpx.post(
        f"{vllm_server.base_url}/tokenize",
        json={"model": vllm_server.model, "prompt": training_prompt(example["question"], example["context"])},
        timeout=REQUEST_TIMEOUT_S,
    )
    rendered = httpx.post(
        f"{vllm_server.base_url}/tokenize",
        json={
            "model": vllm_server.model,
            "messages": chat_messages(example["question"], example["context"]),
            "add_generation_prompt": True,
        },
        timeout=REQUEST_TIMEOUT_S,
    )
    assert literal.status_code == rendered.status_code == 200
    assert rendered.json()["tokens"] == literal.json()["tokens"]


def test_tiny_model_is_reused_while_its_fingerprint_matches(tiny_sql_model: Path) -> None:
    marker = json.loads((tiny_sql_model / MARKER_FILE).read_text())
    assert cached_report(tiny_sql_model, marker["fingerprint"]) is not None
    assert cached_report(tiny_sql_model, "0" * 64) is None
    rebuilt = subprocess.run(
        [str(vllm_python()), "-m", "launch.tiny_model", str(tiny_sql_model)],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    report = json.loads(rebuilt.stdout)
    assert report["reused"] is True
    assert report["fingerprint"] == marker["fingerprint"]
    assert build_tiny_model(tiny_sql_model) == tiny_sql_model


def test_launcher_refuses_a_taken_port_before_starting_vllm(tiny_sql_model: Path, held_port: int) -> None:
    launcher = subprocess.run(
        [
            sys.executable, "-m", "launch.vllm_server",
            "--model", str(tiny_sql_model),
            "--target", "cpu",
            "--python", str(vllm_python()),
            "--port", str(held_port),
            "--wait-ready", "120",
        ],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )  # fmt: skip
    assert launcher.returncode == 2
    assert f"port {held_port} on 127.0.0.1 is already in use" in launcher.stderr
    assert launcher.stdout == ""  # vLLM never started, so it printed nothing


@pytest.mark.slow
def test_vllm_that_loses_the_port_race_is_diagnosed_from_its_log_not_waited_on(
    tiny_sql_model: Path, held_port: int, tmp_path: Path
) -> None:
    options = cpu_options(tiny_sql_model, held_port, tmp_path / "scratch", "port-race")
    log_path = tmp_path / "vllm.log"
    with log_path.open("wb") as log_file:
        process = start_vllm(options, log_file, check_first=False)
    try:
        with pytest.raises(LaunchError) as failure:
            wait_until_generates(
                options.base_url,
                options.served_model_name,
                240.0,
                process,
                log_tail=lambda: read_log_tail(log_path),
                options=options,
            )
        assert process.poll() is not None
    finally:
        stop_vllm(process)
    assert failure.value.reason == "port_in_use"
    assert str(failure.value).startswith(f"port {held_port} on 127.0.0.1 is already in use")
    assert "Address already in use" in str(failure.value)
