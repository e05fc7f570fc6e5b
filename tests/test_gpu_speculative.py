"""benchmarks/gpu_speculative.py without a GPU: the acceptance arithmetic on vLLM's counters, the choice of a method
and of the candidate step's defaults, and a dry run of every phase against the fake vLLM and the real gateway."""

from __future__ import annotations

import json
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from benchmarks.coder_pieces import default_rows_file
from benchmarks.gpu_speculative import DRY_RUN_PLAN, SWEEP, load_rows, rotated, run
from benchmarks.serving import Cell
from benchmarks.spec_figures import (
    TARGETS,
    acceptance,
    accepted_per_position,
    candidate_defaults,
    choose_method,
    summary,
)

SUMMARY_FIELDS = {"model", "method", "baseline_c1_p50_ms", "speculative_c1_p50_ms", "speedup_c1", "acceptance_rate",
                  "throughput_kept_c32", "gateway_share_c1_p50_ms"}

METRICS = """\
# HELP vllm:spec_decode_num_accepted_tokens_per_pos_total Accepted tokens per draft position.
vllm:spec_decode_num_accepted_tokens_per_pos_total{engine="0",model_name="m",position="0"} 90.0
vllm:spec_decode_num_accepted_tokens_per_pos_total{engine="0",model_name="m",position="1"} 60.0
vllm:spec_decode_num_accepted_tokens_per_pos_total{engine="1",model_name="m",position="1"} 10.0
vllm:spec_decode_num_drafts_total{engine="0",model_name="m"} 100.0
"""


def test_acceptance_is_accepted_over_drafted_and_length_counts_the_target_token() -> None:
    per_position = accepted_per_position(METRICS)
    assert per_position == {0: 90.0, 1: 70.0}
    figures = acceptance({"spec_drafts": 100, "spec_draft_tokens": 300, "spec_accepted_tokens": 160}, per_position)
    assert figures is not None
    assert figures["acceptance_rate"] == pytest.approx(160 / 300, abs=1e-4)
    assert figures["mean_acceptance_length"] == pytest.approx(2.6)
    assert figures["acceptance_by_position"] == [0.9, 0.7]


def test_no_drafts_means_no_acceptance_figure_rather_than_zero() -> None:
    assert acceptance({"generation_tokens": 500}) is None
    assert acceptance({"spec_drafts": 0, "spec_draft_tokens": 0, "spec_accepted_tokens": 0}) is None


def cells(p50_at_1: float, req_per_s_at_32: float) -> dict[str, Any]:
    return {"cells": {"1": {"latency_ms": {"p50": p50_at_1}}, "32": {"req_per_s": req_per_s_at_32}}}


def test_the_fastest_method_that_keeps_throughput_is_chosen() -> None:
    sweep = {"baseline": cells(100, 200), "fast_but_greedy": cells(60, 150), "kept": cells(75, 198),
             "slower": cells(90, 205)}
    choice = choose_method(sweep)
    assert choice["chosen"] == "kept"
    assert choice["best"] == "fast_but_greedy"
    assert choice["comparisons"]["kept"] == {"speedup_c1": pytest.approx(100 / 75, abs=1e-4),
                                             "throughput_kept_c32": 0.99}


def test_speculation_stays_off_when_no_method_beats_the_speed_target_or_keeps_throughput() -> None:
    too_slow = choose_method({"baseline": cells(100, 200), "ngram": cells(100 / (TARGETS["speedup_c1"] - 0.05), 200)})
    assert too_slow["chosen"] is None and "under" in too_slow["reason"]
    greedy = choose_method({"baseline": cells(100, 200), "ngram": cells(50, 100)})
    assert greedy["chosen"] is None and greedy["best"] == "ngram" and "throughput" in greedy["reason"]
    assert choose_method({"ngram": cells(50, 200)})["reason"] == "the baseline was not measured"


def test_candidate_k_is_the_largest_within_twice_the_greedy_cost_and_the_budget_has_a_margin() -> None:
    defaults = candidate_defaults(100.0, {2: 120.0, 4: 190.0, 8: 260.0})
    assert defaults["k"] == 4
    assert defaults["budget_ms"] == 300  # 190 * 1.5 = 285, rounded up to 50 ms
    assert candidate_defaults(100.0, {2: 400.0, 4: 900.0})["k"] == 2  # the step keeps k >= 2 whatever it costs
    assert candidate_defaults(None, {})["k"] is None


def test_a_dry_run_summary_never_claims_a_target() -> None:
    sweep = {"baseline": cells(100, 200), "ngram": cells(50, 200)}
    result = summary({"sweep": sweep}, "fake", dry_run=True)
    assert result.keys() >= SUMMARY_FIELDS
    assert result["method"] == "ngram" and result["speedup_c1"] == 2.0
    assert result["target_met"] is False and "dry run" in result["reason"]


def test_cells_take_rows_where_the_last_stopped() -> None:
    rows = load_rows(default_rows_file() or pytest.skip("no Spider rows here"))
    assert all(len(row.schema) <= 2000 for row in rows)
    assert rotated(rows, 5)[0] == rows[5] and rotated(rows, len(rows) + 5)[0] == rows[5]


@pytest.mark.slow
def test_dry_run_writes_the_report_shape_through_every_phase(tmp_path: Path) -> None:
    rows_file = default_rows_file()
    if rows_file is None:
        pytest.skip("no Spider rows here")
    plan = replace(DRY_RUN_PLAN, methods=SWEEP[:2], sweep_cells=(Cell(1, 3), Cell(32, 32, 2)),
                   chosen_cells=(Cell(1, 3), Cell(32, 32, 2)), candidate_ks=(2,), candidate_requests=2,
                   stream_cells=(Cell(1, 2),), dummy_cells=(Cell(1, 2), Cell(32, 32, 2)))
    out = tmp_path / "gpu_speculative.json"
    run(plan, out=out, rows_file=rows_file, model_dir=None, phases=("sweep", "chosen", "dummy15b"),
        until=time.time() + 600, resume=False, method_override=SWEEP[1].name, gateway_env={})
    body = json.loads(out.read_text())
    assert body["dry_run"] is True
    assert body["summary"].keys() >= SUMMARY_FIELDS and body["summary"]["target_met"] is False
    baseline, ngram = body["sweep"]["baseline"], body["sweep"][SWEEP[1].name]
    # The launcher's GPU command line carried the setting, and the counters it makes vLLM export were read.
    command = ngram["vllm_command"]
    assert json.loads(command[command.index("--speculative-config") + 1]) == ngram["speculative_config"]
    assert "--speculative-config" not in baseline["vllm_command"]
    assert baseline["cells"]["1"]["acceptance"] is None
    assert 0 < ngram["cells"]["1"]["acceptance"]["acceptance_rate"] < 1
    assert ngram["same_text_as_baseline"] == 1.0
    chosen = body["chosen"]
    assert chosen["method"] == SWEEP[1].name
    assert chosen["cells"]["1"]["gateway"]["completed"] == chosen["cells"]["1"]["gateway"]["requests"]
    assert chosen["cells"]["1"]["gateway"]["gateway_log_split"]["requests"] > 0
    assert chosen["candidates"]["k2"]["ok"] == 2 and chosen["candidates"]["defaults"]["k"] == 2
    assert chosen["streaming"]["1"]["gateway"]["ttft_ms"]["count"] == 2
    assert set(body["dummy15b"]) == {"baseline", SWEEP[1].name}
    assert "--load-format" in body["dummy15b"]["baseline"]["vllm_command"]
