"""The arithmetic of the speculative-decoding benchmark (benchmarks/gpu_speculative.py), kept apart from the runs so
it can be tested without a GPU: vLLM's spec-decode counters into acceptance figures, the choice of a method from
the sweep, the candidate step's default k and time budget, and the report's summary.
"""

from __future__ import annotations

import math
import re
import urllib.request
from collections.abc import Mapping
from typing import Any

# What the launcher switches on for: faster for one user, and no throughput lost at 32 (the gateway's own target).
TARGETS: dict[str, float] = {"speedup_c1": 1.15, "throughput_kept_c32": 0.95}
# The candidate step may cost this many times the greedy call's p95 at most (docs/benchmarks.md, section 5).
CANDIDATE_COST_LIMIT = 2.0
CANDIDATE_BUDGET_MARGIN = 1.5
CANDIDATE_BUDGET_STEP_MS = 50

_PER_POSITION = re.compile(
    r'^vllm:spec_decode_num_accepted_tokens_per_pos_total\{[^}]*position="(\d+)"[^}]*\}\s+([0-9.eE+-]+)$')


def accepted_per_position(metrics_text: str) -> dict[int, float]:
    """vLLM's accepted-token counts by draft position (summed over engines), from its /metrics text."""
    counts: dict[int, float] = {}
    for line in metrics_text.splitlines():
        match = _PER_POSITION.match(line.strip())
        if match:
            position = int(match.group(1))
            counts[position] = counts.get(position, 0.0) + float(match.group(2))
    return counts


def read_per_position(vllm_url: str, timeout_s: float = 10.0) -> dict[int, float]:
    with urllib.request.urlopen(f"{vllm_url}/metrics", timeout=timeout_s) as response:
        return accepted_per_position(response.read().decode("utf-8", errors="replace"))


def acceptance(counted: Mapping[str, float], per_position: Mapping[int, float] | None = None) -> dict[str, Any] | None:
    """From counter differences over a run: the share of drafted tokens accepted, and the mean number of tokens
    each target-model step produced (1 + accepted per draft). None when vLLM drafted nothing (no speculation)."""
    drafts, drafted, accepted = (counted.get(key) for key in ("spec_drafts", "spec_draft_tokens",
                                                               "spec_accepted_tokens"))
    if not drafts or not drafted or accepted is None:
        return None
    figures: dict[str, Any] = {
        "drafts": drafts, "draft_tokens": drafted, "accepted_tokens": accepted,
        "acceptance_rate": round(accepted / drafted, 4),
        "mean_acceptance_length": round(1 + accepted / drafts, 3),
    }
    if per_position:
        figures["acceptance_by_position"] = [round(per_position[index] / drafts, 4)
                                             for index in sorted(per_position)]
    return figures


def _get(tree: Any, *keys: str) -> Any:
    for key in keys:
        tree = tree.get(key) if isinstance(tree, dict) else None
    return tree


def compare_to_baseline(method: Mapping[str, Any], baseline: Mapping[str, Any]) -> dict[str, float | None]:
    """speedup at 1 (baseline p50 / method p50) and throughput kept at 32 (method req/s / baseline req/s)."""
    base_p50, p50 = _get(baseline, "1", "latency_ms", "p50"), _get(method, "1", "latency_ms", "p50")
    base_rps, rps = _get(baseline, "32", "req_per_s"), _get(method, "32", "req_per_s")
    return {"speedup_c1": round(base_p50 / p50, 4) if base_p50 and p50 else None,
            "throughput_kept_c32": round(rps / base_rps, 4) if base_rps and rps else None}


def choose_method(sweep: Mapping[str, Mapping[str, Any]], baseline: str = "baseline") -> dict[str, Any]:
    """The speculative method the launcher should default to, from the sweep's cells: of those that keep the
    throughput target at 32, the fastest at 1; `chosen` is None (stay off) when none beats the speed-up target.
    `best` is the fastest at 1 whatever its throughput, for the report."""
    cells = {name: entry.get("cells", {}) for name, entry in sweep.items() if isinstance(entry, dict)}
    if baseline not in cells or not cells[baseline]:
        return {"chosen": None, "best": None, "reason": "the baseline was not measured", "comparisons": {}}
    comparisons = {name: compare_to_baseline(method_cells, cells[baseline])
                   for name, method_cells in cells.items() if name != baseline and method_cells}
    measured = {name: c for name, c in comparisons.items() if c["speedup_c1"] is not None}
    if not measured:
        return {"chosen": None, "best": None, "reason": "no speculative method was measured",
                "comparisons": comparisons}
    best = max(measured, key=lambda name: measured[name]["speedup_c1"] or 0.0)
    keeping = {name: c for name, c in measured.items()
               if (c["throughput_kept_c32"] or 0.0) >= TARGETS["throughput_kept_c32"]}
    if not keeping:
        return {"chosen": None, "best": best, "comparisons": comparisons,
                "reason": f"no method kept >= {TARGETS['throughput_kept_c32']:g} of the baseline's throughput at "
                          f"32 (best at 1: {best}, {measured[best]})"}
    fastest = max(keeping, key=lambda name: keeping[name]["speedup_c1"] or 0.0)
    if (keeping[fastest]["speedup_c1"] or 0.0) < TARGETS["speedup_c1"]:
        return {"chosen": None, "best": best, "comparisons": comparisons,
                "reason": f"the fastest method that keeps throughput ({fastest}) is {keeping[fastest]['speedup_c1']}x "
                          f"at 1, under the {TARGETS['speedup_c1']:g}x target"}
    return {"chosen": fastest, "best": best, "comparisons": comparisons, "reason": None}


def candidate_defaults(greedy_p95_ms: float | None, by_k: Mapping[int, float | None]) -> dict[str, Any]:
    """The candidate step's default k on this host: the largest k whose call (p95) costs at most
    CANDIDATE_COST_LIMIT times the greedy call's p95; its time budget: that p95 times a margin, rounded up to
    CANDIDATE_BUDGET_STEP_MS. k >= 2 whatever the cost (the step is on by default with k >= 2)."""
    measured = {k: p95 for k, p95 in by_k.items() if p95 is not None}
    if not measured:
        return {"k": None, "budget_ms": None, "reason": "no candidate call was measured"}
    affordable = [k for k, p95 in measured.items()
                  if greedy_p95_ms is not None and p95 <= CANDIDATE_COST_LIMIT * greedy_p95_ms]
    k = max(affordable) if affordable else min(measured)
    budget = math.ceil(measured[k] * CANDIDATE_BUDGET_MARGIN / CANDIDATE_BUDGET_STEP_MS) * CANDIDATE_BUDGET_STEP_MS
    return {"k": k, "budget_ms": budget, "rule": f"largest k with p95 <= {CANDIDATE_COST_LIMIT:g} x greedy p95; "
                                                 f"budget = {CANDIDATE_BUDGET_MARGIN:g} x its p95"}


def summary(body: Mapping[str, Any], model: str, dry_run: bool) -> dict[str, Any]:
    """The report's summary: the issue's fields, whether the targets were met and, if not, the measured reason."""
    sweep = body.get("sweep", {})
    choice = body.get("choice") or choose_method(sweep)
    method = choice.get("chosen") or choice.get("best")
    baseline_cells = _get(sweep, "baseline", "cells") or {}
    method_entry = sweep.get(method, {}) if method else {}
    compared = (choice.get("comparisons") or {}).get(method, {}) if method else {}
    chosen_cells = _get(body, "chosen", "cells") or {}
    result: dict[str, Any] = {
        "model": model,
        "method": choice.get("chosen") or "off",
        "measured_method": method,
        "speculative_config": method_entry.get("speculative_config"),
        "baseline_c1_p50_ms": _get(baseline_cells, "1", "latency_ms", "p50"),
        "speculative_c1_p50_ms": _get(method_entry, "cells", "1", "latency_ms", "p50"),
        "speedup_c1": compared.get("speedup_c1"),
        "acceptance_rate": _get(method_entry, "cells", "1", "acceptance", "acceptance_rate"),
        "mean_acceptance_length": _get(method_entry, "cells", "1", "acceptance", "mean_acceptance_length"),
        "throughput_kept_c32": compared.get("throughput_kept_c32"),
        "gateway_share_c1_p50_ms": _get(chosen_cells, "1", "gateway", "gateway_log_split", "gateway_own_ms", "p50"),
        "targets": TARGETS,
        "dry_run": dry_run,
    }
    met = choice.get("chosen") is not None
    result["target_met"] = met
    if not met:
        result["reason"] = choice.get("reason") or "not measured"
    if dry_run:
        result["target_met"] = False
        result["reason"] = "dry run: a fake vLLM stood in for the GPU; nothing here is a measurement"
    return result

