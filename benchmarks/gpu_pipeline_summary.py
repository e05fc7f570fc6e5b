"""The summary of reports/gpu_pipeline.json (CONTRACTS.md, GPU), computed from the report's phases alone:
throughput kept at 32, the gateway's own time, the weights format each GPU generation should serve, the `always`
policy's cost, suffix decoding's verdict, and the seed deployment's latency targets."""

from __future__ import annotations

from typing import Any

# Weights formats a GPU generation can run (vLLM 0.26): Hopper has FP8 tensor cores; Ampere (the seed's RTX 3090)
# runs FP8 checkpoints through the weight-only Marlin kernel, and int8 W8A8 on CUTLASS.
GENERATIONS = {"hopper": ("bf16", "fp8", "fp8_marlin", "int8"), "ampere": ("bf16", "fp8_marlin", "int8")}
QUALITY_TOLERANCE_PP = 1.0
# A format replaces bf16 only if at least this much faster at c = 1: this host's run-to-run noise is 5-10 %.
MIN_SPEEDUP = 1.05
SEED_P50_MS, SEED_P99_MS = 500.0, 2000.0
KEPT_TARGET = 0.95
SPEC_SPEEDUP, SPEC_KEPT = 1.15, 0.95


def _get(body: Any, *keys: str) -> Any:
    for key in keys:
        body = body.get(key) if isinstance(body, dict) else None
    return body


def _ratio(a: Any, b: Any) -> float | None:
    return round(a / b, 3) if isinstance(a, int | float) and isinstance(b, int | float) and b else None


def weights_choice(body: dict[str, Any]) -> dict[str, Any]:
    """Per generation: the fastest format at c = 1 whose exact match is within 1 pp of bf16's, if it beats bf16 by
    more than the noise (MIN_SPEEDUP); else bf16."""
    cells = _get(body, "weights", "cells") or {}
    quality = body.get("weights_quality") or {}
    base_p50 = _get(cells, "1", "bf16", "latency_ms", "p50")
    base_rps = _get(cells, "32", "bf16", "req_per_s")
    base_em = _get(quality, "bf16", "exact_match_fences_stripped")
    figures: dict[str, dict[str, Any]] = {}
    for weights in GENERATIONS["hopper"]:
        em = _get(quality, weights, "exact_match_fences_stripped")
        figures[weights] = {
            "c1_p50_ms": _get(cells, "1", weights, "latency_ms", "p50"),
            "speedup_c1": _ratio(base_p50, _get(cells, "1", weights, "latency_ms", "p50")),
            "throughput_c32_vs_bf16": _ratio(_get(cells, "32", weights, "req_per_s"), base_rps),
            "quality_delta": (round((em - base_em) * 100, 2) if isinstance(em, float) and isinstance(base_em, float)
                              else None),
        }
    chosen: dict[str, Any] = {}
    for generation, allowed in GENERATIONS.items():
        eligible = [w for w in allowed if figures[w]["speedup_c1"] is not None and figures[w]["quality_delta"]
                    is not None and figures[w]["quality_delta"] >= -QUALITY_TOLERANCE_PP]
        best = max(eligible, key=lambda w: figures[w]["speedup_c1"], default=None)
        if best is not None and best != "bf16" and figures[best]["speedup_c1"] < MIN_SPEEDUP:
            best = "bf16"  # within the noise: keep the checkpoint as it is
        chosen[generation] = {"chosen": best, **(figures[best] if best else {}),
                              "measured_on": "H100 (Ampere's kernels forced where they differ)"
                              if generation == "ampere" else "H100"}
    return {"by_generation": chosen, "formats": figures, "quality_metric": "exact match, fences stripped, pp"}


def speculative_verdict(body: dict[str, Any]) -> dict[str, Any]:
    cells = _get(body, "speculative", "cells") or {}
    speedup = _ratio(_get(cells, "1", "baseline", "latency_ms", "p50"), _get(cells, "1", "suffix", "latency_ms", "p50"))
    kept = _ratio(_get(cells, "32", "suffix", "req_per_s"), _get(cells, "32", "baseline", "req_per_s"))
    on = speedup is not None and kept is not None and speedup >= SPEC_SPEEDUP and kept >= SPEC_KEPT
    return {"method": "suffix", "speedup_c1": speedup, "throughput_kept_c32": kept, "switch_on": on,
            "acceptance_rate": _get(cells, "1", "suffix", "acceptance", "acceptance_rate"),
            "skipped": _get(body, "speculative", "skipped")}


def summary(body: dict[str, Any]) -> dict[str, Any]:
    kept = _get(body, "serving", "cells", "32", "gateway_vs_direct", "throughput_kept")
    seed_p50 = _get(body, "quality", "always", "gateway", "p50_ms")
    seed_p99 = _get(body, "quality", "always", "gateway", "p99_ms")
    misses = []
    if kept is None or kept < KEPT_TARGET:
        misses.append(f"throughput kept at c=32 {kept} (target >= {KEPT_TARGET})")
    if seed_p50 is None or seed_p50 >= SEED_P50_MS:
        misses.append(f"gateway p50 {seed_p50} ms at 32 rows in flight with the GPU defaults (target < {SEED_P50_MS})")
    if seed_p99 is None or seed_p99 >= SEED_P99_MS:
        misses.append(f"gateway p99 {seed_p99} ms at 32 rows in flight with the GPU defaults (target < {SEED_P99_MS})")
    return {
        "gpu": _get(body, "accelerator", "gpu"),
        "dry_run": bool(body.get("dry_run")),
        "throughput_kept_c32": kept,
        "gateway_share_c1_p50_ms": _get(body, "serving", "cells", "1", "gateway", "gateway_log_split",
                                        "gateway_own_ms", "p50"),
        "weights": weights_choice(body),
        "candidates_always_cost_c1_p50_ms": _get(body, "candidates", "cells", "1", "always_minus_off_p50_ms"),
        "candidates_always_cost_c32_p50_ms": _get(body, "candidates", "cells", "32", "always_minus_off_p50_ms"),
        "seed_targets_gpu_defaults": {"p50_ms": seed_p50, "p99_ms": seed_p99, "rows_in_flight": 32},
        "speculative": speculative_verdict(body),
        "grammar_stall": {background: _get(body, "grammar", background, "latency_ms", "p50")
                          for background in ("none", "grammar", "sample")},
        "target_met": not misses and not body.get("dry_run"),
        "reason": "; ".join(misses) if misses else ("dry run: figures mean nothing" if body.get("dry_run") else None),
    }
