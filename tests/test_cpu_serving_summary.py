"""benchmarks.cpu_serving's summary: per-weights figures against float32 transformers, the launcher's evidence,
and summary.best (CONTRACTS.md), from measured cells (synthetic here: the arithmetic is what is checked)."""

from __future__ import annotations

from typing import Any

import pytest

from benchmarks.cpu_serving import attach_quality, by_weights_table, launcher_evidence
from launch.cpu_weights import cpu_signature


def cell(p50_ms: float, req_per_s: float, tokens: float = 32.0) -> dict[str, Any]:
    return {"latency_ms": {"p50": p50_ms, "p99": p50_ms * 1.2}, "req_per_s": req_per_s,
            "generated_tokens_per_request": tokens}


TRANSFORMERS = {"cells": {"1": cell(18000, 0.056), "4": cell(72000, 0.056), "8": cell(144000, 0.056)}}


def runs(int8_c8: float, int4_c8: float) -> dict[str, dict[str, Any]]:
    return {
        "fp32": {"cells": {"1": {"direct": cell(9000, 0.11), "gateway": cell(10000, 0.1)},
                           "4": {"direct": cell(20000, 0.2), "gateway": cell(20000, 0.2)},
                           "8": {"direct": cell(30000, 0.27), "gateway": cell(30000, 0.27)}}},
        "int8": {"cells": {"1": {"gateway": cell(5000, 0.2)}, "4": {"gateway": cell(9000, 0.44)},
                           "8": {"gateway": cell(14000, int8_c8)}}},
        "int4": {"cells": {"1": {"gateway": cell(6000, 0.17)}, "4": {"gateway": cell(11000, 0.36)},
                           "8": {"gateway": cell(13000, int4_c8)}}},
    }


def report(int8_c8: float, int4_c8: float) -> dict[str, Any]:
    return {"unquantized_weights": "fp32", "headline": {},
            "summary": {"by_weights": by_weights_table(TRANSFORMERS, runs(int8_c8, int4_c8))}}


def quality(int8: float, int4: float) -> dict[str, Any]:
    return {"by_weights": {"bf16": {"em_delta_vs_bf16": 0.0}, "int8": {"em_delta_vs_bf16": int8},
                           "int4": {"em_delta_vs_bf16": int4}}}


def test_ratios_are_against_float32_transformers_through_the_gateway() -> None:
    table = by_weights_table(TRANSFORMERS, runs(0.6, 0.5))
    assert table["int8"]["1"]["p50_speedup_vs_transformers"] == 3.6  # 18000 / 5000
    assert table["int8"]["8"]["throughput_vs_transformers"] == pytest.approx(10.71, abs=0.01)  # 0.6 / 0.056
    assert table["fp32"]["1"]["p50_ms"] == 10000  # the gateway path, not direct
    assert table["int4"]["8"]["tokens_per_request"] == 32.0


def test_best_is_the_fastest_format_whose_quality_held_and_says_if_targets_were_met() -> None:
    done = attach_quality(report(int8_c8=0.6, int4_c8=0.7), quality(int8=0.0, int4=-0.05))
    best = done["summary"]["best"]
    assert best["weights"] == "int8"  # int4 is faster here but lost 5 pp
    assert best["latency_speedup_c1"] == 3.6 and best["quality_em_delta_vs_bf16"] == 0.0
    assert best["target_met"] is True and "target_missed_because" not in best
    assert done["launcher_evidence"]["cpu_signature"] == cpu_signature()
    assert done["headline"]["best"] == best


def test_a_missed_target_is_flagged_with_the_measured_reason() -> None:
    best = attach_quality(report(int8_c8=0.3, int4_c8=0.2), quality(int8=0.0, int4=0.0))["summary"]["best"]
    assert best["weights"] == "int8" and best["target_met"] is False
    assert best["target_missed_because"] == [
        "throughput at 8 concurrent is 5.36x float32 transformers' (target 10.0x)"]


def test_without_quality_figures_only_the_unquantized_weights_qualify() -> None:
    done = attach_quality(report(int8_c8=0.6, int4_c8=0.7), None)
    best = done["summary"]["best"]
    assert best["weights"] == "fp32" and best["target_met"] is False
    evidence = launcher_evidence(done["summary"]["by_weights"], None, "fp32")["by_weights"]
    assert evidence["int8"]["quality_em_delta_vs_bf16"] is None and evidence["fp32"]["quality_em_delta_vs_bf16"] == 0


def test_every_sql_check_verdict_counts_as_a_whole_answer() -> None:
    # 32 forced tokens end in a length stop: the gateway answers 422 truncated_sql after the full generation.
    # Counting it as a failure left the gateway cells of make bench empty (p50 None, 0 req/s).
    from benchmarks.results import completed

    assert completed([0.0, 100.0, "gateway", 422, "truncated_sql", 32])
    assert completed([0.0, 100.0, "gateway", 422, "ungrounded_sql", 32])
    assert not completed([0.0, 100.0, "gateway", 502, "upstream_error", None])
