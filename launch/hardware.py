"""What this host can run vLLM on: a GPU, or the CPU cores we may bind to."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterable
from pathlib import Path
from typing import Literal

Target = Literal["gpu", "cpu"]

# Asking torch in the vLLM environment costs a few seconds of imports; only done when nvidia-smi is absent.
_TORCH_PROBE = "import torch; print('cuda' if torch.cuda.is_available() else 'cpu')"


def nvidia_gpu_listed() -> bool:
    """True when `nvidia-smi -L` runs and lists at least one GPU."""
    executable = shutil.which("nvidia-smi")
    if executable is None:
        return False
    try:
        listing = subprocess.run([executable, "-L"], capture_output=True, text=True, timeout=30, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return listing.returncode == 0 and "GPU " in listing.stdout


def torch_sees_cuda(python: str) -> bool:
    """True when torch, imported by `python` (the vLLM environment), reports a usable CUDA device."""
    try:
        probe = subprocess.run(
            [python, "-c", _TORCH_PROBE], capture_output=True, text=True, timeout=180, check=False
        )
    except (OSError, subprocess.TimeoutExpired):
        return False
    return probe.returncode == 0 and probe.stdout.strip().endswith("cuda")


def detect_target(python: str | None) -> Target:
    """`gpu` when a CUDA device is visible (nvidia-smi, else torch in the vLLM env), otherwise `cpu`."""
    if os.environ.get("CUDA_VISIBLE_DEVICES") in ("", "-1"):
        return "cpu"
    if nvidia_gpu_listed():
        return "gpu"
    if python is not None and torch_sees_cuda(python):
        return "gpu"
    return "cpu"


def usable_cpu_cores() -> list[int]:
    """The cores this process may run on (respects taskset / cgroup cpusets)."""
    return sorted(os.sched_getaffinity(0))


def core_list(cores: list[int]) -> str:
    """Compress core ids into vLLM's `VLLM_CPU_OMP_THREADS_BIND` syntax: `[0, 1, 2, 5]` -> `0-2,5`."""
    if not cores:
        raise ValueError("no CPU cores given")
    ranges: list[str] = []
    ordered = sorted(set(cores))
    start = previous = ordered[0]
    for core in [*ordered[1:], None]:
        if core is not None and core == previous + 1:
            previous = core
            continue
        ranges.append(str(start) if start == previous else f"{start}-{previous}")
        if core is not None:
            start = previous = core
    return ",".join(ranges)


# Instruction sets with bf16 arithmetic. Without one, bf16 matrix products are emulated and run several times slower
# than float32 (measured on an AVX2-only EPYC: vLLM CPU in bf16 generated ~2 tokens/s, slower than transformers in
# float32); with one, bf16 halves the memory traffic and wins.
NATIVE_BF16_FLAGS = frozenset({"avx512_bf16", "amx_bf16"})
CPU_INFO = Path("/proc/cpuinfo")


def cpu_flags(cpuinfo: Path = CPU_INFO) -> frozenset[str]:
    """The instruction-set flags of the first CPU in /proc/cpuinfo (empty when it can't be read)."""
    try:
        for line in cpuinfo.read_text(errors="replace").splitlines():
            if line.startswith("flags"):
                return frozenset(line.partition(":")[2].split())
    except OSError:
        pass
    return frozenset()


def cpu_dtype(flags: Iterable[str] | None = None) -> Literal["bfloat16", "float32"]:
    """The dtype vLLM should compute in on this CPU: bf16 where the hardware has it, else float32."""
    return "bfloat16" if NATIVE_BF16_FLAGS & set(cpu_flags() if flags is None else flags) else "float32"
