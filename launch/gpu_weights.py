"""Which weights vLLM serves on a GPU: bf16, or FP8 where the GPU has FP8 tensor cores and it was measured faster.

Measured on an H100 (reports/gpu_pipeline.json, two runs, Qwen2.5-1.5B architecture; quality on the real
Qwen2.5-Coder-0.5B over the public rows), against bf16:

| weights (vLLM's kernel)                       | c=1 p50 speed-up | c=32 throughput | exact match   |
|-----------------------------------------------|------------------|-----------------|---------------|
| FP8 W8A8 (CUTLASS FP8, Hopper)                | 1.24x, 1.09x     | 0.91x, 0.94x    | -0.24 pp      |
| FP8 weight-only (Marlin: Ampere's only path)  | 1.05x, 0.98x     | 0.87x, 0.92x    | -0.24 pp      |
| int8 W8A8 (CUTLASS int8, Ampere and Hopper)   | 0.99x, 0.96x     | 0.93x, 0.96x    | -0.24 pp      |

So: Hopper serves FP8 (faster for the one user at a time this team is, within 1 pp of bf16's quality); Ampere
(the seed deployment's RTX 3090) keeps bf16, since neither format it can run was measurably faster; every other
generation keeps bf16 until measured. `GPU_WEIGHTS` (or `--gpu-weights`) overrides the choice.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import subprocess
from typing import Final, Literal, get_args

GpuWeights = Literal["bf16", "fp8"]
GPU_WEIGHTS_CHOICES: Final[tuple[str, ...]] = get_args(GpuWeights)
GPU_WEIGHTS_ENV: Final = "GPU_WEIGHTS"
# Chosen per generation from reports/gpu_pipeline.json (the table above); a generation not listed keeps bf16.
MEASURED: Final[dict[str, GpuWeights]] = {"hopper": "fp8", "ampere": "bf16"}
# vLLM's flags per format: FP8 is vLLM's online quantization of the bf16 checkpoint. int8 W8A8 (measured, never
# faster) is not offered here: serve a launch/quantize.py folder with --model to try it.
ARGS: Final[dict[GpuWeights, tuple[str, ...]]] = {"bf16": (), "fp8": ("--quantization", "fp8")}


@dataclasses.dataclass(frozen=True)
class GpuWeightsChoice:
    weights: GpuWeights
    extra_args: tuple[str, ...]
    reason: str


def generation(compute_capability: str | None) -> str:
    """hopper (9.x), ampere (8.0-8.7), ada (8.9), blackwell (10+), older, or unknown."""
    try:
        major, minor = (int(part) for part in (compute_capability or "").strip().split(".")[:2])
    except ValueError:
        return "unknown"
    if major >= 10:
        return "blackwell"
    if major == 9:
        return "hopper"
    if major == 8:
        return "ada" if minor >= 9 else "ampere"
    return "older"


def compute_capability() -> str | None:
    """The first GPU's compute capability as `nvidia-smi` reports it (e.g. "9.0"), None when it can't tell."""
    executable = shutil.which("nvidia-smi")
    if executable is None:
        return None
    try:
        query = subprocess.run([executable, "--query-gpu=compute_cap", "--format=csv,noheader"],
                               capture_output=True, text=True, timeout=30, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return None
    lines = query.stdout.strip().splitlines()
    return lines[0].strip() if query.returncode == 0 and lines else None


def choose_gpu_weights(asked: str | None, capability: str | None) -> GpuWeightsChoice:
    """The operator's word when given (`auto` or empty: the measured choice for this GPU's generation)."""
    wanted = (asked or "auto").strip().lower()
    family = generation(capability)
    if wanted != "auto":
        if wanted not in GPU_WEIGHTS_CHOICES:
            raise ValueError(f"GPU_WEIGHTS must be auto or one of {', '.join(GPU_WEIGHTS_CHOICES)}, not {asked!r}")
        if wanted == "fp8" and family not in ("hopper", "ada", "blackwell"):
            reason = f"asked for fp8 on a {family} GPU: vLLM runs it weight-only (Marlin), measured no faster"
        else:
            reason = f"asked for {wanted} ({GPU_WEIGHTS_ENV} / --gpu-weights)"
        weights: GpuWeights = wanted  # type: ignore[assignment]  # checked against the choices above
        return GpuWeightsChoice(weights, ARGS[weights], reason)
    measured = MEASURED.get(family)
    if measured is None:
        return GpuWeightsChoice("bf16", (), f"{family} GPU (compute capability {capability}): not measured, bf16")
    return GpuWeightsChoice(measured, ARGS[measured],
                            f"{family} GPU (compute capability {capability}): {measured}, measured fastest within "
                            "1 pp of bf16's quality (reports/gpu_pipeline.json)")


def choose_from_environment(asked: str | None = None) -> GpuWeightsChoice:
    return choose_gpu_weights(asked or os.environ.get(GPU_WEIGHTS_ENV), compute_capability())
