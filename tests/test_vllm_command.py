"""launch.vllm_server: vLLM's command lines and environment, preflight checks, start-up diagnosis, the CLI."""

from __future__ import annotations

import json
import os
import shlex
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import ClassVar

import pytest

from gateway.prompt import render_prompt
from launch.hardware import core_list, cpu_dtype, cpu_flags, usable_cpu_cores
from launch.speculative import SpeculativeError, ngram, parse_speculative, suffix
from launch.tiny_model import TAUGHT_EXAMPLES, TaughtExample, training_prompt
from launch.vllm_server import (
    CPU_ENTRYPOINT,
    DEFAULT_GPU_SPECULATIVE,
    REPO_ROOT,
    LaunchError,
    LaunchOptions,
    build_command,
    build_env,
    diagnose_exit,
    lora_rank_from_adapter,
    main,
    preflight,
    wait_until_generates,
)


def flag_values(command: list[str]) -> dict[str, str | None]:
    """`--flag value` pairs of a command line; flags without a value map to None."""
    values: dict[str, str | None] = {}
    for index, word in enumerate(command):
        if word.startswith("--"):
            following = command[index + 1] if index + 1 < len(command) else None
            values[word] = None if following is None or following.startswith("--") else following
    return values


@pytest.fixture
def model_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "merged"
    folder.mkdir()
    (folder / "config.json").write_text("{}")
    return folder


@pytest.fixture
def held_port() -> Iterator[int]:
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        yield int(holder.getsockname()[1])


@pytest.fixture
def unused_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


# ------------------------------------------------------------------------------------------ command lines


def test_gpu_command_serves_the_merged_folder_greedily_on_loopback_with_prefix_caching() -> None:
    options = LaunchOptions(model="/models/merged", target="gpu", port=8123, served_model_name="sql",
                            max_model_len=900, gpu_memory_utilization=0.5)  # fmt: skip
    command = build_command(options)
    assert command[:3] == ["vllm", "serve", "/models/merged"]
    flags = flag_values(command)
    assert flags["--served-model-name"] == "sql"
    assert flags["--host"] == "127.0.0.1"
    assert flags["--port"] == "8123"
    assert flags["--max-model-len"] == "900"
    assert flags["--generation-config"] == "vllm"
    assert "--enable-prefix-caching" in flags and flags["--enable-prefix-caching"] is None
    assert flags["--gpu-memory-utilization"] == "0.5"
    cpu_or_optional = {"--enforce-eager", "--kv-cache-memory-bytes", "--max-num-seqs", "--enable-lora",
                       "--speculative-config"}
    assert not cpu_or_optional & flags.keys()


def test_max_num_seqs_is_passed_only_when_set() -> None:
    for target in ("gpu", "cpu"):
        assert flag_values(build_command(LaunchOptions(model="m", target=target, max_num_seqs=64)))[
            "--max-num-seqs"
        ] == "64"
        assert "--max-num-seqs" not in build_command(LaunchOptions(model="m", target=target))


def test_cpu_command_runs_the_module_entrypoint_with_a_kv_budget_and_eager_mode() -> None:
    options = LaunchOptions(model="/m/tiny", target="cpu", python="/envs/vllm/bin/python", port=9001,
                            kv_cache_memory="256M")  # fmt: skip
    command = build_command(options)
    assert command[:3] == ["/envs/vllm/bin/python", "-m", CPU_ENTRYPOINT]
    flags = flag_values(command)
    assert flags["--model"] == "/m/tiny"
    assert flags["--kv-cache-memory-bytes"] == "256M"
    assert flags["--max-model-len"] == "1024"
    assert flags["--generation-config"] == "vllm"
    assert flags["--host"] == "127.0.0.1"
    assert flags["--port"] == "9001"
    assert "--enforce-eager" in flags
    assert flags["--dtype"] == cpu_dtype()
    assert not {"--gpu-memory-utilization", "--enable-prefix-caching"} & flags.keys()


@pytest.mark.parametrize("max_model_len", [1024, 2048, 8192])
def test_cpu_command_never_splits_a_prefill_because_seeded_samples_would_kill_the_engine(max_model_len: int) -> None:
    # vLLM 0.32 rewinds a seeded request's generator when it drops the token sampled mid-prefill; a CPU generator
    # has no offset, so the engine died ("CPU Generator does not use offset") under the candidate step's seeded
    # n = k calls (make quality --candidates-policy always, reports/quality_rows.vllm.log). No chunked prefill:
    # a whole prompt always fits one step.
    flags = flag_values(build_command(LaunchOptions(model="m", target="cpu", max_model_len=max_model_len)))
    assert "--no-enable-chunked-prefill" in flags
    assert int(str(flags["--max-num-batched-tokens"])) >= max(max_model_len, 2048)
    gpu = flag_values(build_command(LaunchOptions(model="m", target="gpu", max_model_len=max_model_len)))
    assert "--no-enable-chunked-prefill" not in gpu and "--max-num-batched-tokens" not in gpu


@pytest.mark.parametrize(("flags", "dtype"), [
    ({"fpu", "avx", "avx2", "fma"}, "float32"),  # AVX2 only: bf16 would be emulated
    ({"avx2", "avx512f", "avx512_bf16"}, "bfloat16"),
    ({"avx2", "avx512f", "amx_tile", "amx_bf16"}, "bfloat16"),
])
def test_cpu_dtype_is_bf16_only_where_the_cpu_computes_in_it(flags: set[str], dtype: str) -> None:
    assert cpu_dtype(flags) == dtype


def test_cpu_flags_are_read_from_cpuinfo(tmp_path: Path) -> None:
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text("processor\t: 0\nmodel name\t: Some CPU\nflags\t\t: fpu avx2 amx_bf16\n\nprocessor\t: 1\n")
    assert cpu_flags(cpuinfo) == {"fpu", "avx2", "amx_bf16"}
    assert cpu_flags(tmp_path / "missing") == frozenset()


def test_the_cpu_dtype_can_be_forced() -> None:
    flags = flag_values(build_command(LaunchOptions(model="m", target="cpu", cpu_dtype="bfloat16")))
    assert flags["--dtype"] == "bfloat16"
    assert "--dtype" not in flag_values(build_command(LaunchOptions(model="m", target="gpu")))


@pytest.mark.parametrize("target", ["gpu", "cpu"])
def test_unmerged_lora_is_served_under_the_served_model_name(target: str) -> None:
    options = LaunchOptions(model="/base", target=target, served_model_name="sql",  # type: ignore[arg-type]
                            lora_dir="/adapters/sql", max_lora_rank=32)  # fmt: skip
    flags = flag_values(build_command(options))
    assert "--enable-lora" in flags
    assert flags["--lora-modules"] == "sql=/adapters/sql"
    assert flags["--max-lora-rank"] == "32"
    assert flags["--served-model-name"] != "sql"  # the base model must not shadow the adapter's name


# --------------------------------------------------------------------------------- speculative decoding


def test_gpu_command_passes_the_speculative_setting_as_vllm_json() -> None:
    options = LaunchOptions(model="/m", target="gpu", speculative=ngram(tokens=4, lookup_min=2, lookup_max=5))
    config = flag_values(build_command(options))["--speculative-config"]
    assert config is not None
    assert json.loads(config) == {"method": "ngram", "num_speculative_tokens": 4, "prompt_lookup_min": 2,
                                  "prompt_lookup_max": 5}


def test_speculative_decoding_is_off_by_default_until_measured(model_dir: Path,
                                                               capsys: pytest.CaptureFixture[str]) -> None:
    assert parse_speculative(DEFAULT_GPU_SPECULATIVE) is None
    assert main(["--model", str(model_dir), "--target", "gpu", "--print-command"]) == 0
    assert "--speculative-config" not in capsys.readouterr().out


def test_speculative_decoding_is_refused_on_cpu_with_a_clear_message(model_dir: Path,
                                                                     capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(LaunchError, match="GPU only") as refused:
        build_command(LaunchOptions(model="/m", target="cpu", speculative=ngram()))
    assert refused.value.reason == "unsupported"
    argv = ["--model", str(model_dir), "--target", "cpu", "--python", "/envs/v/bin/python", "--speculative",
            "ngram", "--print-command"]  # fmt: skip
    assert main(argv) == 2
    captured = capsys.readouterr()
    assert "GPU only" in captured.err and "speculative" in captured.err
    assert captured.out == ""


@pytest.mark.parametrize(("text", "expected"), [
    ("ngram", {"method": "ngram", "num_speculative_tokens": 5, "prompt_lookup_min": 2, "prompt_lookup_max": 4}),
    ("ngram:k=3,max=6", {"method": "ngram", "num_speculative_tokens": 3, "prompt_lookup_min": 2,
                         "prompt_lookup_max": 6}),
    ("suffix", {"method": "suffix"}),
    ("suffix:factor=1.5,prob=0.2,depth=16", {"method": "suffix", "suffix_decoding_max_tree_depth": 16,
                                             "suffix_decoding_max_spec_factor": 1.5,
                                             "suffix_decoding_min_token_prob": 0.2}),
    ('{"method": "ngram", "num_speculative_tokens": 2, "prompt_lookup_max": 3}',
     {"method": "ngram", "num_speculative_tokens": 2, "prompt_lookup_max": 3}),
])
def test_speculative_spellings_become_the_vllm_config(text: str, expected: dict[str, object]) -> None:
    parsed = parse_speculative(text)
    assert parsed is not None
    assert json.loads(parsed.as_json()) == expected


@pytest.mark.parametrize("text", ["eagle", "ngram:k=0", "ngram:min=5,max=2", "ngram:depth=3", "ngram:k=two",
                                  "suffix:prob=1.5", "suffix:factor=-1", '{"method": "ngram"}', "{not json",
                                  '{"method": "suffix", "model": "x"}'])
def test_speculative_values_vllm_would_refuse_are_refused_before_start(text: str) -> None:
    with pytest.raises(SpeculativeError):
        parse_speculative(text)


def test_cli_names_the_bad_speculative_value(model_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["--model", str(model_dir), "--target", "gpu", "--speculative", "ngram:k=0", "--print-command"]
    assert main(argv) == 2
    assert "num_speculative_tokens must be at least 1" in capsys.readouterr().err


def test_speculative_labels_name_each_setting() -> None:
    assert ngram(tokens=5, lookup_min=2, lookup_max=4).label == "ngram_k5_min2_max4"
    assert suffix(suffix_decoding_max_spec_factor=1.5).label == "suffix_factor1.5"


def test_extra_arguments_come_last_and_unchanged() -> None:
    command = build_command(LaunchOptions(model="m", extra_args=("--seed", "7")))
    assert command[-2:] == ["--seed", "7"]


# ------------------------------------------------------------------------------------------ environments


def test_cpu_env_points_tmpdir_at_the_scratch_folder_and_binds_every_usable_core() -> None:
    base = {"PATH": "/usr/bin", "TMPDIR": "/tmp"}
    env = build_env(LaunchOptions(model="m", target="cpu", scratch_dir="/scratch/vllm"), base)
    assert env["TMPDIR"] == "/scratch/vllm"
    assert env["VLLM_CPU_OMP_THREADS_BIND"] == core_list(usable_cpu_cores())
    assert env["PATH"] == "/usr/bin"
    assert base == {"PATH": "/usr/bin", "TMPDIR": "/tmp"}


def test_cpu_env_thread_binding_is_configurable_and_scratch_defaults_per_port() -> None:
    one = build_env(LaunchOptions(model="m", target="cpu", cpu_threads_bind="1", port=8101), {})
    two = build_env(LaunchOptions(model="m", target="cpu", port=8102), {})
    assert one["VLLM_CPU_OMP_THREADS_BIND"] == "1"
    assert one["TMPDIR"] != two["TMPDIR"]


def test_gpu_env_leaves_tmpdir_and_cpu_binding_alone() -> None:
    env = build_env(LaunchOptions(model="m", target="gpu"), {"TMPDIR": "/tmp"})
    assert env["TMPDIR"] == "/tmp"
    assert "VLLM_CPU_OMP_THREADS_BIND" not in env
    assert env["PYTHONUNBUFFERED"] == "1"


@pytest.mark.parametrize(
    ("cores", "expected"),
    [([0], "0"), ([0, 1], "0-1"), ([3, 0, 1, 2, 5], "0-3,5"), ([1, 1, 4, 6, 7], "1,4,6-7")],
)
def test_core_list_uses_vllm_range_syntax(cores: list[int], expected: str) -> None:
    assert core_list(cores) == expected


@pytest.mark.parametrize(("rank", "expected"), [(1, 1), (8, 8), (12, 16), (64, 64), (300, 320)])
def test_lora_rank_rounds_up_to_a_rank_vllm_accepts(tmp_path: Path, rank: int, expected: int) -> None:
    (tmp_path / "adapter_config.json").write_text(json.dumps({"r": rank}))
    assert lora_rank_from_adapter(tmp_path) == expected


def test_lora_rank_beyond_vllm_limit_is_refused(tmp_path: Path) -> None:
    (tmp_path / "adapter_config.json").write_text(json.dumps({"r": 1024}))
    with pytest.raises(LaunchError):
        lora_rank_from_adapter(tmp_path)


# ---------------------------------------------------------------------------------------------- preflight


def test_preflight_refuses_a_taken_port_and_says_which(model_dir: Path, held_port: int) -> None:
    with pytest.raises(LaunchError) as failure:
        preflight(LaunchOptions(model=str(model_dir), target="gpu", port=held_port))
    assert failure.value.reason == "port_in_use"
    assert f"port {held_port} on 127.0.0.1 is already in use" in str(failure.value)


def test_preflight_accepts_a_model_folder_on_a_free_port(model_dir: Path, unused_port: int) -> None:
    preflight(LaunchOptions(model=str(model_dir), target="gpu", port=unused_port))


def test_preflight_accepts_a_hub_id(unused_port: int) -> None:
    preflight(LaunchOptions(model="Qwen/Qwen2.5-1.5B-Instruct", target="gpu", port=unused_port))


def test_preflight_refuses_a_folder_without_config_json(tmp_path: Path, unused_port: int) -> None:
    with pytest.raises(LaunchError) as failure:
        preflight(LaunchOptions(model=str(tmp_path), target="gpu", port=unused_port))
    assert failure.value.reason == "model_missing"
    assert "config.json" in str(failure.value)


@pytest.mark.parametrize("model", ["./no/such/folder", "/no/such/folder", "merged"])
def test_preflight_refuses_a_missing_folder_that_is_not_a_hub_id(model: str, unused_port: int) -> None:
    with pytest.raises(LaunchError) as failure:
        preflight(LaunchOptions(model=model, target="gpu", port=unused_port))
    assert failure.value.reason == "model_missing"
    assert model in str(failure.value)


def test_preflight_refuses_a_lora_folder_without_adapter_config(
    model_dir: Path, tmp_path: Path, unused_port: int
) -> None:
    with pytest.raises(LaunchError) as failure:
        preflight(LaunchOptions(model=str(model_dir), target="gpu", port=unused_port, lora_dir=str(tmp_path)))
    assert failure.value.reason == "lora_missing"


def test_preflight_refuses_a_missing_vllm_python(model_dir: Path, tmp_path: Path, unused_port: int) -> None:
    missing = tmp_path / "no-venv" / "bin" / "python"
    with pytest.raises(LaunchError) as failure:
        preflight(LaunchOptions(model=str(model_dir), target="cpu", port=unused_port, python=str(missing)))
    assert failure.value.reason == "python_missing"
    assert "SQLGATE_VLLM_PYTHON" in str(failure.value)


# ------------------------------------------------------------------------------------- start-up diagnosis

LOG_LINES = {
    "port_in_use": "OSError: [Errno 98] Address already in use",
    "out_of_memory": "torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 2.00 GiB",
    "weights_unavailable": "huggingface_hub.errors.LocalEntryNotFoundError: Cannot find the requested files",
}


@pytest.mark.parametrize(("reason", "line"), LOG_LINES.items())
def test_exit_diagnosis_names_the_cause_and_keeps_the_log_tail(reason: str, line: str) -> None:
    log = "INFO starting\n" + "\n".join(f"noise {i}" for i in range(100)) + f"\nTraceback\n{line}\n"
    error = diagnose_exit(log, 1, LaunchOptions(model="m", port=8555))
    assert error.reason == reason
    assert line in str(error)
    assert "noise 0\n" not in str(error)  # only the tail


def test_exit_diagnosis_of_a_port_clash_names_host_and_port() -> None:
    error = diagnose_exit(LOG_LINES["port_in_use"], 1, LaunchOptions(model="m", port=8555))
    assert str(error).startswith("port 8555 on 127.0.0.1 is already in use")


def test_exit_diagnosis_reads_a_sigkill_without_log_clue_as_out_of_memory() -> None:
    assert diagnose_exit("INFO loading weights\n", -9, LaunchOptions(model="m")).reason == "out_of_memory"
    assert diagnose_exit("INFO loading weights\n", 1, LaunchOptions(model="m")).reason == "exited"


# ---------------------------------------------------------------------------------------------- readiness


class ScriptedVllm(BaseHTTPRequestHandler):
    """Answers the readiness probe from a script: a fault injector, the happy path is tested on real vLLM."""

    script: ClassVar[list[tuple[int, dict[str, object]]]] = []
    served: ClassVar[list[str]] = []
    probes: ClassVar[list[dict[str, object]]] = []

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["content-length"])))
        type(self).probes.append(body)
        status, payload = self.script.pop(0) if len(self.script) > 1 else self.script[0]
        self._send(status, payload)

    def do_GET(self) -> None:
        self._send(200, {"object": "list", "data": [{"id": name} for name in self.served]})

    def _send(self, status: int, payload: dict[str, object]) -> None:
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def scripted_vllm() -> Iterator[tuple[str, type[ScriptedVllm]]]:
    handler = type("Handler", (ScriptedVllm,), {"script": [], "served": [], "probes": []})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", handler
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


def test_readiness_waits_through_errors_until_a_token_is_generated(
    scripted_vllm: tuple[str, type[ScriptedVllm]],
) -> None:
    base_url, handler = scripted_vllm
    generated = {"choices": [{"text": "S", "finish_reason": "length"}], "usage": {"completion_tokens": 1}}
    handler.script = [(503, {"error": "loading"}), (500, {"error": "warming"}), (200, generated)]
    wait_until_generates(base_url, "sql", 20.0, poll_interval_s=0.01)
    assert len(handler.probes) == 3
    assert handler.probes[-1]["model"] == "sql"
    assert handler.probes[-1]["max_tokens"] == 1


def test_readiness_fails_at_once_when_vllm_serves_another_model_name(
    scripted_vllm: tuple[str, type[ScriptedVllm]],
) -> None:
    base_url, handler = scripted_vllm
    handler.script = [(404, {"error": {"message": "The model `sql` does not exist.", "code": 404}})]
    handler.served = ["something-else"]
    with pytest.raises(LaunchError) as failure:
        wait_until_generates(base_url, "sql", 20.0, poll_interval_s=0.01)
    assert failure.value.reason == "wrong_model"
    assert "something-else" in str(failure.value)
    assert len(handler.probes) == 1


def test_readiness_gives_up_at_the_deadline_when_nothing_answers(unused_port: int) -> None:
    base_url = f"http://127.0.0.1:{unused_port}"
    with pytest.raises(LaunchError) as failure:
        wait_until_generates(base_url, "sql", 0.2, poll_interval_s=0.01)
    assert failure.value.reason == "not_ready"
    assert base_url in str(failure.value)


def test_readiness_stops_waiting_when_the_server_process_dies(tmp_path: Path, unused_port: int) -> None:
    # A process that prints vLLM's port-clash error and exits: the fault, injected.
    log_path = tmp_path / "vllm.log"
    with log_path.open("wb") as log:
        dying = subprocess.Popen(
            [sys.executable, "-c", f"print({LOG_LINES['port_in_use']!r}); raise SystemExit(1)"],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    options = LaunchOptions(model="m", port=unused_port)
    with pytest.raises(LaunchError) as failure:
        wait_until_generates(
            options.base_url, "sql", 120.0, dying, log_tail=log_path.read_text, options=options
        )
    assert failure.value.reason == "port_in_use"
    assert dying.returncode == 1


# ------------------------------------------------------------------------------------------------- the CLI


def test_print_command_prints_exactly_the_built_command(
    model_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["--model", str(model_dir), "--target", "cpu", "--python", "/envs/v/bin/python", "--port", "8111",
            "--kv-cache-memory", "512M", "--max-num-seqs", "8", "--print-command"]  # fmt: skip
    assert main(argv) == 0
    printed = shlex.split(capsys.readouterr().out)
    expected = LaunchOptions(model=str(model_dir), target="cpu", python="/envs/v/bin/python", port=8111,
                             kv_cache_memory="512M", max_num_seqs=8)  # fmt: skip
    assert printed == build_command(expected)


def test_print_command_reads_the_lora_rank_from_the_adapter(
    model_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    adapter = tmp_path / "adapter"
    adapter.mkdir()
    (adapter / "adapter_config.json").write_text(json.dumps({"r": 8}))
    argv = ["--model", str(model_dir), "--target", "gpu", "--lora", str(adapter), "--print-command"]
    assert main(argv) == 0
    flags = flag_values(shlex.split(capsys.readouterr().out))
    assert flags["--max-lora-rank"] == "8"
    assert flags["--lora-modules"] == f"qwen2.5-1.5b-sql={adapter}"


def test_cli_refuses_a_taken_port_with_exit_code_2(
    model_dir: Path, held_port: int, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["--model", str(model_dir), "--target", "gpu", "--port", str(held_port)]) == 2
    assert f"port {held_port} on 127.0.0.1 is already in use" in capsys.readouterr().err


def test_cli_help_names_every_documented_option(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["--help"])
    assert exit_info.value.code == 0
    help_text = capsys.readouterr().out
    for option in ("--model", "--target", "--port", "--served-model-name", "--max-model-len", "--lora",
                   "--cpu-dtype", "--print-command", "--wait-ready", "--speculative"):  # fmt: skip
        assert option in help_text


# ----------------------------------------------------------------------------------- light to import


def test_launch_modules_import_neither_torch_nor_vllm() -> None:
    # Run where torch and vLLM are installed, or the check could not fail.
    vllm_python = REPO_ROOT / ".venv-vllm" / "bin" / "python"
    python = str(vllm_python) if os.access(vllm_python, os.X_OK) else sys.executable
    probe = (
        "import sys, launch.vllm_server, launch.tiny_model, launch.hardware, launch.speculative\n"
        "print(sorted(m for m in ('torch', 'vllm', 'transformers') if m in sys.modules))"
    )
    result = subprocess.run([python, "-c", probe], cwd=REPO_ROOT, capture_output=True, text=True, timeout=60,
                            check=True)  # fmt: skip
    assert result.stdout.strip() == "[]"


@pytest.mark.parametrize("example", TAUGHT_EXAMPLES, ids=lambda example: example["question"][:24])
def test_tiny_model_is_taught_the_prompt_the_gateway_renders(example: TaughtExample) -> None:
    assert training_prompt(example["question"], example["context"]) == render_prompt(
        example["question"], example["context"]
    )
