"""`make up` on a CPU: the weights it serves, the dtype it passes to vLLM, and the line that says why."""

from __future__ import annotations

from pathlib import Path

from tests.test_stack import model_dir, up_with_fake

__all__ = ["model_dir"]  # the fixture, shared with test_stack

# Shows the command line it was given in its log (which `up` prints when vLLM dies), then dies.
ECHOES_AND_DIES = 'echo "ARGV: $*"; exit 3'


def test_cpu_weights_asked_for_are_served_in_their_dtype_and_said(tmp_path: Path, model_dir: Path) -> None:
    done, _, _ = up_with_fake(tmp_path, model_dir, ECHOES_AND_DIES, CPU_WEIGHTS="fp32")
    assert done.returncode == 1
    assert "== CPU weights: fp32 (computing in float32): CPU_WEIGHTS=fp32 was asked for" in done.stderr
    assert "--dtype float32" in done.stderr


def test_the_flag_wins_over_the_environment(tmp_path: Path, model_dir: Path) -> None:
    done, _, _ = up_with_fake(tmp_path, model_dir, ECHOES_AND_DIES, "--cpu-weights", "bf16", CPU_WEIGHTS="fp32")
    assert "== CPU weights: bf16 (computing in bfloat16)" in done.stderr
    assert "--dtype bfloat16" in done.stderr


def test_quantized_weights_for_a_folder_without_weights_fall_back_and_say_so(tmp_path: Path, model_dir: Path) -> None:
    done, _, _ = up_with_fake(tmp_path, model_dir, ECHOES_AND_DIES, CPU_WEIGHTS="int8")
    assert "== CPU weights: int8 wanted (CPU_WEIGHTS=int8 was asked for), but" in done.stderr
    assert "is not a local folder of weights to quantize" in done.stderr
    assert f"--model {model_dir}" in done.stderr.replace("'", "")


def test_an_unknown_cpu_weights_value_is_refused_before_anything_starts(tmp_path: Path, model_dir: Path) -> None:
    done, record, _ = up_with_fake(tmp_path, model_dir, ECHOES_AND_DIES, CPU_WEIGHTS="int3")
    assert done.returncode == 1
    assert "CPU weights 'int3': choose one of fp32, bf16, int8, int4 (or auto)" in done.stderr
    assert not (record / "leader.pid").exists()
