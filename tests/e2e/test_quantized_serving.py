"""Real vLLM on CPU serving launch.quantize's int8 and int4 variants of the tiny model: vLLM reads the format,
picks its CPU quantized kernel (its log names it), and generates exactly the tokens asked for."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import httpx
import pytest

from launch.cpu_weights import unsupported
from launch.hardware import cpu_flags
from launch.tiny_model import SINGER_EXAMPLE, training_prompt
from tests.e2e.vllm_fixture import REPO_ROOT, vllm_cpu_server, vllm_python

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

# What vLLM 0.32's CPU build logs when it chooses the kernel for each compressed-tensors scheme.
KERNELS = {"int8": "CPUInt8ScaledMMLinearKernel", "int4": "CPUWNA16"}
FORCED_TOKENS = 12


@pytest.mark.parametrize("weights", ["int8", "int4"])
def test_vllm_serves_the_quantized_variant_with_its_cpu_kernel(
    tiny_sql_model: Path, tmp_path: Path, weights: str
) -> None:
    missing = unsupported(weights, cpu_flags())
    if missing is not None:
        pytest.skip(f"this CPU: {missing}")
    out = tmp_path / f"tiny-{weights}"
    done = subprocess.run(
        [str(vllm_python()), "-m", "launch.quantize", "--model", str(tiny_sql_model), "--weights", weights,
         "--out", str(out)],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=600, check=False,
        env={**os.environ, "PYTHONPATH": str(REPO_ROOT)},
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]

    with vllm_cpu_server(out, tmp_path / "logs") as server:
        response = httpx.post(
            f"{server.base_url}/v1/completions",
            json={"model": server.model, "prompt": training_prompt(SINGER_EXAMPLE["question"],
                                                                     SINGER_EXAMPLE["context"]),
                  "temperature": 0, "max_tokens": FORCED_TOKENS, "ignore_eos": True},
            timeout=120,
        )
        log = "".join(path.read_text(errors="replace") for path in (tmp_path / "logs").glob("vllm-*.log"))
    assert response.status_code == 200, response.text
    assert response.json()["usage"]["completion_tokens"] == FORCED_TOKENS
    assert "quantization=compressed-tensors" in log
    assert KERNELS[weights] in log
