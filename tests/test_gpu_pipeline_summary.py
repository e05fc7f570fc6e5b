"""The GPU pipeline report's summary: the rules that turn measured cells into the launcher's GPU choices."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from benchmarks.gpu_pipeline_summary import summary, weights_choice

REPORT = Path(__file__).resolve().parent.parent / "reports" / "gpu_pipeline.json"


def weights_body(p50: dict[str, float], em: dict[str, float]) -> dict[str, Any]:
    cells = {"1": {w: {"latency_ms": {"p50": ms}} for w, ms in p50.items()},
             "32": {w: {"req_per_s": 100.0} for w in p50}}
    return {"weights": {"cells": cells},
            "weights_quality": {w: {"exact_match_fences_stripped": value} for w, value in em.items()}}


def test_the_fastest_format_within_one_point_of_bf16_quality_wins_per_generation() -> None:
    body = weights_body({"bf16": 100.0, "fp8": 80.0, "fp8_marlin": 90.0, "int8": 70.0},
                        {"bf16": 0.30, "fp8": 0.295, "fp8_marlin": 0.30, "int8": 0.25})
    chosen = weights_choice(body)["by_generation"]
    assert chosen["hopper"]["chosen"] == "fp8"  # int8 is faster but loses 5 pp
    assert chosen["ampere"]["chosen"] == "fp8_marlin"  # no FP8 compute there: Marlin or int8
    assert chosen["hopper"]["speedup_c1"] == 1.25 and chosen["hopper"]["quality_delta"] == -0.5


def test_a_speed_up_inside_the_noise_keeps_bf16() -> None:
    body = weights_body({"bf16": 100.0, "fp8": 97.0, "fp8_marlin": 99.0, "int8": 98.0},
                        {"bf16": 0.30, "fp8": 0.30, "fp8_marlin": 0.30, "int8": 0.30})
    assert {g: c["chosen"] for g, c in weights_choice(body)["by_generation"].items()} == {"hopper": "bf16",
                                                                                          "ampere": "bf16"}


def test_targets_missed_are_named_and_a_dry_run_never_meets_them() -> None:
    body: dict[str, Any] = {"serving": {"cells": {"32": {"gateway_vs_direct": {"throughput_kept": 0.9}}}},
                            "quality": {"always": {"gateway": {"p50_ms": 420.0, "p99_ms": 2500.0}}}}
    result = summary(body)
    assert result["target_met"] is False
    assert "throughput kept at c=32 0.9" in result["reason"] and "p99 2500.0 ms" in result["reason"]
    body["serving"]["cells"]["32"]["gateway_vs_direct"]["throughput_kept"] = 0.99
    body["quality"]["always"]["gateway"]["p99_ms"] = 1500.0
    assert summary(body)["target_met"] is True
    assert summary({**body, "dry_run": True})["target_met"] is False


def test_the_committed_report_s_summary_is_what_its_cells_say() -> None:
    body = json.loads(REPORT.read_text())
    assert body["summary"] == summary(body)
    assert body["summary"]["gpu"].startswith("NVIDIA H100") and body["dry_run"] is False
