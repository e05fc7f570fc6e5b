"""The clients against the real gateway (`gateway_server`) in front of real vLLM on CPU (`vllm_upstream`)
serving the tiny model taught `launch.tiny_model.TAUGHT_EXAMPLES`."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any, Protocol

import pytest

from clients.bench import BenchConfig, _shares, arrival_offsets, load_prompts, run_bench
from clients.cli import main
from clients.failures import ExitCode
from launch.tiny_model import (
    DANGEROUS_EXAMPLE,
    EMPLOYEE_EXAMPLE,
    FENCED_EXAMPLE,
    JOIN_EXAMPLE,
    SINGER_EXAMPLE,
    TAUGHT_EXAMPLES,
    UNGROUNDED_EXAMPLE,
)

pytestmark = pytest.mark.e2e

REPO_ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = REPO_ROOT / "clients" / "examples"
EXAMPLE_TIMEOUT_S = 120


class GatewayServer(Protocol):
    base_url: str
    api_key: str


class VllmUpstream(Protocol):
    base_url: str
    model: str


def _without_fence(sql: str) -> str:
    return re.sub(r"^```sql\s*|\s*```$", "", sql.strip())


@pytest.fixture
def gateway_env(gateway_server: GatewayServer, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """The openai SDK's variables pointed at the gateway, in this process and for subprocesses."""
    env = {"OPENAI_BASE_URL": f"{gateway_server.base_url}/v1", "OPENAI_API_KEY": gateway_server.api_key}
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return env


@pytest.fixture
def taught_rows_file(tmp_path: Path) -> Path:
    """The taught examples as sql-create-context rows (references without the markdown fence)."""
    path = tmp_path / "taught.jsonl"
    rows = [{"question": e["question"], "context": e["context"], "answer": _without_fence(e["answer"])}
            for e in TAUGHT_EXAMPLES]
    path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    return path


# ---- ask -------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("route", ["completions", "chat", "sql"])
def test_ask_prints_the_sql_and_exits_0(route: str, gateway_env: dict[str, str],
                                        capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["ask", SINGER_EXAMPLE["question"], "--schema", SINGER_EXAMPLE["context"], "--route", route])
    out, err = capsys.readouterr()
    assert code == ExitCode.OK, err
    assert out == SINGER_EXAMPLE["answer"] + "\n"
    assert err == ""


def test_ask_verbose_shows_the_check_on_stderr(gateway_env: dict[str, str], tmp_path: Path,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    schema = tmp_path / "dorms.sql"
    schema.write_text(JOIN_EXAMPLE["context"])
    code = main(["ask", "-q", JOIN_EXAMPLE["question"], "--schema", str(schema), "-v", "--dialect", "sqlite"])
    out, err = capsys.readouterr()
    assert code == ExitCode.OK
    assert out.strip() == JOIN_EXAMPLE["answer"]
    assert "check: valid, statement select, read-only yes, dialect sqlite" in err
    assert "unknown tables: none; unknown columns: none" in err
    for table in ("student", "lives_in", "dorm"):
        assert table in err


def test_ask_json_prints_the_whole_response(gateway_env: dict[str, str], capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["ask", EMPLOYEE_EXAMPLE["question"], "--schema", EMPLOYEE_EXAMPLE["context"], "--json"])
    response = json.loads(capsys.readouterr().out)
    assert code == ExitCode.OK
    assert response["object"] == "text_completion"
    assert response["choices"][0]["text"] == EMPLOYEE_EXAMPLE["answer"]
    assert response["sql"]["valid"] is True and response["sql"]["tables"] == ["employee"]
    assert response["usage"]["completion_tokens"] > 0


def test_ask_exits_3_when_the_check_rejects_the_sql(gateway_env: dict[str, str],
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["ask", DANGEROUS_EXAMPLE["question"], "--schema", DANGEROUS_EXAMPLE["context"], "-v"])
    out, err = capsys.readouterr()
    assert code == ExitCode.SQL_REJECTED
    assert out == ""
    assert f"rejected SQL: {DANGEROUS_EXAMPLE['answer']}" in err
    assert "sqlgate: error: SQL rejected:" in err and "(HTTP 422, sql_check_error, unsafe_sql)" in err


def test_console_entry_point_returns_the_exit_code(gateway_env: dict[str, str]) -> None:
    def sqlgate(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "clients", *args], capture_output=True, text=True,
                              cwd=REPO_ROOT, timeout=EXAMPLE_TIMEOUT_S, check=False)

    ok = sqlgate("ask", SINGER_EXAMPLE["question"], "--schema", SINGER_EXAMPLE["context"])
    rejected = sqlgate("ask", DANGEROUS_EXAMPLE["question"], "--schema", DANGEROUS_EXAMPLE["context"])
    wrong_key = sqlgate("ask", SINGER_EXAMPLE["question"], "--schema", SINGER_EXAMPLE["context"],
                        "--api-key", "sk-wrong-key-0000000000")
    assert (ok.returncode, ok.stdout) == (0, SINGER_EXAMPLE["answer"] + "\n")
    assert rejected.returncode == ExitCode.SQL_REJECTED
    assert wrong_key.returncode == ExitCode.AUTH and wrong_key.stderr.count("\n") == 1


# ---- eval ------------------------------------------------------------------------------------------------------


def test_eval_scores_every_row_and_resumes(gateway_env: dict[str, str], taught_rows_file: Path, tmp_path: Path,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    out_dir = tmp_path / "eval"
    first = main(["eval", str(taught_rows_file), "--limit", "2", "--out", str(out_dir), "--no-progress"])
    assert first == ExitCode.OK
    assert json.loads((out_dir / "report.json").read_text())["rows_scored"] == 2

    second = main(["eval", str(taught_rows_file), "--out", str(out_dir), "-c", "3", "--no-progress"])
    summary = capsys.readouterr().out
    report: dict[str, Any] = json.loads((out_dir / "report.json").read_text())
    rows = [json.loads(line) for line in (out_dir / "rows.jsonl").read_text().splitlines()]
    by_question = {row["question"]: row for row in rows}
    assert second == ExitCode.OK
    assert report["rows_resumed"] == 2 and report["rows_scored"] == 6 and report["complete"] is True
    assert sorted(row["index"] for row in rows) == list(range(6))  # nothing asked twice

    # The model reproduces every taught answer; the gateway strips the fence and rejects the DELETE.
    assert report["exact_match"] == 1.0 and report["normalised_match"] == 1.0
    assert by_question[FENCED_EXAMPLE["question"]]["prediction"] == _without_fence(FENCED_EXAMPLE["answer"])
    dangerous = by_question[DANGEROUS_EXAMPLE["question"]]
    assert (dangerous["status"], dangerous["error_code"]) == (422, "unsafe_sql")
    assert dangerous["valid"] is False and dangerous["read_only"] is False
    ungrounded = by_question[UNGROUNDED_EXAMPLE["question"]]
    assert ungrounded["grounded"] is False and ungrounded["compiles"] is False
    assert "no such column" in ungrounded["compile_error"]
    assert report["read_only_sql"] == pytest.approx(5 / 6, abs=1e-4)
    assert report["schema_grounded_sql"] == pytest.approx(5 / 6, abs=1e-4)
    assert report["compiles_sqlite"] == pytest.approx(5 / 6, abs=1e-4)
    assert report["rejected_by_check"] >= 1
    assert (out_dir / "report.png").read_bytes().startswith(b"\x89PNG")
    assert "exact match (publication)   100.0 %" in summary


def test_eval_through_the_sql_route(gateway_env: dict[str, str], taught_rows_file: Path, tmp_path: Path) -> None:
    code = main(["eval", str(taught_rows_file), "--route", "sql", "--out", str(tmp_path / "sql"), "--no-progress",
                 "--no-chart"])
    report = json.loads((tmp_path / "sql" / "report.json").read_text())
    assert code == ExitCode.OK
    assert report["route"] == "sql" and report["rows_scored"] == 6 and report["exact_match"] == 1.0
    assert not (tmp_path / "sql" / "report.png").exists()


def test_eval_with_a_wrong_key_stops_at_once(gateway_server: GatewayServer, taught_rows_file: Path,
                                             tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["eval", str(taught_rows_file), "--base-url", gateway_server.base_url, "--api-key",
                 "sk-wrong-key-0000000000", "--out", str(tmp_path / "e"), "--no-progress"])
    assert code == ExitCode.AUTH
    assert "authentication_error" in capsys.readouterr().err


# ---- bench -----------------------------------------------------------------------------------------------------


@pytest.fixture
def taught_prompts(tmp_path: Path) -> Path:
    """The three taught examples whose SQL passes the gateway's check, as a bench prompts file."""
    path = tmp_path / "prompts.jsonl"
    path.write_text("".join(json.dumps({"question": e["question"], "schema": e["context"]}) + "\n"
                            for e in (SINGER_EXAMPLE, EMPLOYEE_EXAMPLE, JOIN_EXAMPLE)))
    return path


def test_bench_gateway_closed_loop_cli(gateway_env: dict[str, str], taught_prompts: Path, tmp_path: Path,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    report_path = tmp_path / "bench.json"
    code = main(["bench", "--requests", "6", "--concurrency", "2", "--prompts", str(taught_prompts),
                 "--out", str(report_path)])
    out = capsys.readouterr().out
    report = json.loads(report_path.read_text())
    gateway = report["targets"]["gateway"]
    assert code == ExitCode.OK
    assert gateway["requests"] == 6 and gateway["ok"] == 6 and gateway["by_status"] == {"200": 6}
    assert 0 < gateway["latency_ms"]["p50"] <= gateway["latency_ms"]["p99"] <= gateway["latency_ms"]["max"]
    assert report_path.with_suffix(".png").read_bytes().startswith(b"\x89PNG")
    assert "latency ms p50" in out


def test_bench_compare_streams_both_targets_with_the_same_prompts(
    gateway_server: GatewayServer, vllm_upstream: VllmUpstream, tmp_path: Path
) -> None:
    prompts = tmp_path / "one.jsonl"
    prompts.write_text(json.dumps({"question": SINGER_EXAMPLE["question"], "schema": SINGER_EXAMPLE["context"]}))
    config = BenchConfig(gateway_url=gateway_server.base_url, api_key=gateway_server.api_key,
                         vllm_url=vllm_upstream.base_url, requests=2, concurrency=1, stream=True,
                         prompts=load_prompts(prompts), compare=True)
    report = run_bench(config)
    for name in ("gateway", "vllm"):
        target = report["targets"][name]
        assert target["ok"] == 2, target["by_status"]
        assert target["ttft_ms"]["count"] == 2
        assert target["ttft_ms"]["max"] <= target["latency_ms"]["max"]
    assert report["config"]["vllm_model"] == vllm_upstream.model
    assert set(report["ratios"]) >= {"latency_p50", "latency_p99", "req_per_s", "ttft_p50", "overhead_p50_ms"}
    # The same prompt twice, one after the other: the gateway's cache answers the second, and the report says so.
    assert report["targets"]["gateway"]["cache_hits"] >= 1, report["targets"]["gateway"]["samples"]
    assert any("cache" in warning for warning in report["warnings"])


def test_bench_open_loop_over_two_processes(vllm_upstream: VllmUpstream, taught_prompts: Path) -> None:
    config = BenchConfig(target="vllm", vllm_url=vllm_upstream.base_url, requests=4, rate=8.0, processes=2,
                         stream=True, prompts=load_prompts(taught_prompts))
    target = run_bench(config)["targets"]["vllm"]
    assert target["ok"] == 4 and target["ttft_ms"]["count"] == 4
    # Both processes' samples are merged onto one time line from the first start. When the OS ran each request is
    # not asserted (a loaded machine runs them late); the schedule they follow is (tests/clients/test_bench.py).
    starts = sorted(sample[0] for sample in target["samples"])
    assert starts[0] == 0.0 and len(starts) == 4
    assert sorted(offset for share in _shares(config) for offset in arrival_offsets(config, share)) == [
        0.0, 0.125, 0.25, 0.375]


def test_bench_vllm_target_with_fixed_output_length(vllm_upstream: VllmUpstream) -> None:
    config = BenchConfig(target="vllm", vllm_url=vllm_upstream.base_url, vllm_model=vllm_upstream.model,
                         requests=3, concurrency=3, max_tokens=12, ignore_eos=True)
    target = run_bench(config)["targets"]["vllm"]
    assert target["ok"] == 3
    assert target["completion_tokens"]["min"] == target["completion_tokens"]["max"] == 12


# ---- examples --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("command", "expected"),
    [
        ([sys.executable, str(EXAMPLES / "openai_completions.py")], SINGER_EXAMPLE["answer"]),
        ([sys.executable, str(EXAMPLES / "openai_chat.py")], JOIN_EXAMPLE["answer"]),
        ([sys.executable, str(EXAMPLES / "openai_streaming.py")], EMPLOYEE_EXAMPLE["answer"]),
        ([sys.executable, str(EXAMPLES / "analyst_notebook.py")], "all questions answered"),
        (["bash", str(EXAMPLES / "curl.sh")], "data: [DONE]"),
    ],
)
def test_examples_run_against_the_gateway(command: list[str], expected: str, gateway_env: dict[str, str]) -> None:
    if command[0] == "bash" and shutil.which("curl") is None:
        pytest.fail("curl.sh needs curl (apt-get install curl)")
    result = subprocess.run(command, capture_output=True, text=True, env={**os.environ, **gateway_env},
                            timeout=EXAMPLE_TIMEOUT_S, check=False)
    assert result.returncode == 0, result.stderr
    assert expected in result.stdout


@pytest.mark.parametrize("script", ["openai_completions.py", "openai_chat.py", "openai_streaming.py",
                                    "analyst_notebook.py", "curl.sh"])
def test_examples_fail_loudly_with_a_wrong_key(script: str, gateway_env: dict[str, str]) -> None:
    runner = ["bash"] if script.endswith(".sh") else [sys.executable]
    env = {**os.environ, **gateway_env, "OPENAI_API_KEY": "sk-wrong-key-0000000000"}
    result = subprocess.run([*runner, str(EXAMPLES / script)], capture_output=True, text=True, env=env,
                            timeout=EXAMPLE_TIMEOUT_S, check=False)
    assert result.returncode != 0
    assert "401" in result.stderr + result.stdout


def test_example_exits_non_zero_when_the_sql_is_rejected(gateway_env: dict[str, str]) -> None:
    result = subprocess.run(
        [sys.executable, str(EXAMPLES / "openai_streaming.py"), DANGEROUS_EXAMPLE["question"],
         DANGEROUS_EXAMPLE["context"]],
        capture_output=True, text=True, env={**os.environ, **gateway_env}, timeout=EXAMPLE_TIMEOUT_S, check=False)
    assert result.returncode != 0
    assert "unsafe_sql" in result.stderr or "rejected" in result.stderr
