"""`make up` on a GPU: the weights each GPU generation gets (as measured, reports/gpu_pipeline.json), the operator's
override, and the gateway settings each target's measurements chose (launch/target_defaults.py)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from launch.gpu_weights import choose_gpu_weights, generation
from launch.target_defaults import gateway_defaults, with_target_defaults
from tests.test_stack import clean_env, fake_vllm, free_port, model_dir, stack

__all__ = ["model_dir"]  # the fixture, shared with test_stack

ECHOES_AND_DIES = 'echo "ARGV: $*"; exit 3'


@pytest.mark.parametrize(("capability", "family"), [
    ("9.0", "hopper"), ("8.6", "ampere"), ("8.0", "ampere"), ("8.9", "ada"), ("10.0", "blackwell"), ("7.5", "older"),
    (None, "unknown"), ("", "unknown"), ("n/a", "unknown"),
])
def test_the_gpu_generation_comes_from_the_compute_capability(capability: str | None, family: str) -> None:
    assert generation(capability) == family


def test_auto_serves_fp8_on_hopper_and_bf16_on_ampere_and_anything_unmeasured() -> None:
    hopper = choose_gpu_weights("auto", "9.0")
    assert (hopper.weights, hopper.extra_args) == ("fp8", ("--quantization", "fp8"))
    assert "reports/gpu_pipeline.json" in hopper.reason
    for capability in ("8.6", "8.9", "10.0", None):
        choice = choose_gpu_weights(None, capability)
        assert (choice.weights, choice.extra_args) == ("bf16", ()), capability


def test_the_operator_s_word_wins_and_an_unknown_value_is_refused() -> None:
    assert choose_gpu_weights("bf16", "9.0").extra_args == ()
    ampere_fp8 = choose_gpu_weights("FP8", "8.6")
    assert ampere_fp8.extra_args == ("--quantization", "fp8")
    assert "Marlin" in ampere_fp8.reason  # said: on Ampere it runs weight-only and was measured no faster
    with pytest.raises(ValueError, match="GPU_WEIGHTS must be auto or one of bf16, fp8"):
        choose_gpu_weights("int3", "9.0")


def fake_nvidia_smi(tmp_path: Path, capability: str) -> str:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    smi = bin_dir / "nvidia-smi"
    smi.write_text(f"#!/bin/sh\necho {capability}\n")
    smi.chmod(0o755)
    return f"{bin_dir}:/usr/bin:/bin"


def test_make_up_on_a_hopper_gpu_serves_fp8_and_says_why(tmp_path: Path, model_dir: Path) -> None:
    path = fake_nvidia_smi(tmp_path, "9.0")
    stderr = _up_gpu(tmp_path, model_dir, PATH=path)
    assert "== GPU weights: fp8 (hopper GPU (compute capability 9.0): fp8, measured fastest" in stderr
    assert "--quantization fp8" in stderr


def test_gpu_weights_bf16_keeps_the_checkpoint_as_it_is(tmp_path: Path, model_dir: Path) -> None:
    path = fake_nvidia_smi(tmp_path, "9.0")
    stderr = _up_gpu(tmp_path, model_dir, "--gpu-weights", "bf16", PATH=path)
    assert "== GPU weights: bf16 (asked for bf16" in stderr
    assert "--quantization" not in stderr


def _up_gpu(tmp_path: Path, model_dir: Path, *extra: str, **env: str) -> str:
    executable, _ = fake_vllm(tmp_path, ECHOES_AND_DIES)
    shutil.copy(executable, executable.parent / "vllm")
    done = stack(tmp_path / "run", "up", "--model", str(model_dir), "--target", "gpu", "--gateway-port",
                 str(free_port()), "--vllm-port", str(free_port()), *extra,
                 env=clean_env(SQLGATE_VLLM_PYTHON=str(executable), **env))
    assert done.returncode == 1
    return done.stderr


def test_each_target_gets_the_candidate_settings_its_measurements_chose() -> None:
    gpu, cpu = gateway_defaults("gpu"), gateway_defaults("cpu")
    assert gpu["SQLGATE_SQL_CANDIDATES_POLICY"] == "always" and gpu["SQLGATE_SQL_CANDIDATE_STRATEGY"] == "sample"
    assert cpu["SQLGATE_SQL_CANDIDATES_POLICY"] == "on_failure" and cpu["SQLGATE_SQL_CANDIDATE_STRATEGY"] == "grammar"
    # What the operator set stays theirs.
    mine = with_target_defaults("gpu", {"SQLGATE_SQL_CANDIDATE_STRATEGY": "grammar", "HOME": "/root"})
    assert mine["SQLGATE_SQL_CANDIDATE_STRATEGY"] == "grammar" and mine["SQLGATE_SQL_CANDIDATES_POLICY"] == "always"
    assert mine["HOME"] == "/root"
