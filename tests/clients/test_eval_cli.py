"""`sqlgate eval` against the real gateway without a model: transient failures leave rows for the rerun,
refusals the caps make are final, and the held-out split is selected. (Scores themselves: test_e2e.py.)"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from clients.cli import main
from clients.failures import ExitCode
from tests.clients.conftest import GatewayFactory


def _write_rows(path: Path, count: int, question_length: int = 20) -> None:
    rows = [{"question": f"Question {i} ".ljust(question_length, "?"), "context": "CREATE TABLE t (id INTEGER)",
             "answer": f"SELECT id FROM t WHERE id = {i}"} for i in range(count)]
    path.write_text(json.dumps(rows), encoding="utf-8")


def test_upstream_down_leaves_every_row_for_the_rerun(
    serve_gateway: GatewayFactory, closed_port_url: str, api_key: str, tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    data, out = tmp_path / "rows.json", tmp_path / "out"
    _write_rows(data, 4)
    with serve_gateway(upstream_url=closed_port_url, upstream_retry_attempts=1) as url:
        code = main(["eval", str(data), "--base-url", url, "--api-key", api_key, "--out", str(out),
                     "--max-retries", "0", "--no-progress", "-c", "2"])
    summary = capsys.readouterr().out
    report = json.loads((out / "report.json").read_text())
    assert code == ExitCode.UPSTREAM
    assert report["rows_scored"] == 0 and report["complete"] is False
    assert report["unanswered_by_error"] == {"503 upstream_unavailable": 4}
    assert (out / "rows.jsonl").read_text() == ""
    assert "INCOMPLETE: 4 rows unanswered" in summary and "rerun" in summary


def test_rows_refused_by_the_caps_are_final_and_the_heldout_split_is_selected(
    serve_gateway: GatewayFactory, closed_port_url: str, api_key: str, tmp_path: Path,
) -> None:
    data, out = tmp_path / "rows.json", tmp_path / "out"
    _write_rows(data, 7, question_length=60)
    with serve_gateway(upstream_url=closed_port_url, max_question_chars=30) as url:
        argv = ["eval", str(data), "--split", "heldout", "--base-url", url, "--api-key", api_key,
                "--out", str(out), "--no-progress", "--no-chart", "-c", "1"]  # one at a time: file order = split order
        first = main(argv)
        second = main(argv)
    report = json.loads((out / "report.json").read_text())
    rows = [json.loads(line) for line in (out / "rows.jsonl").read_text().splitlines()]
    assert first == second == ExitCode.OK
    assert [row["index"] for row in rows] == np.random.default_rng(42).permutation(7).tolist()
    assert {(row["status"], row["error_code"]) for row in rows} == {(422, "question_too_long")}
    assert report["refused_input"] == 7 and report["exact_match"] == 0.0
    assert report["rows_resumed"] == 7  # the second run asked nothing


def test_a_folder_of_another_run_is_refused(tmp_path: Path, closed_port_url: str,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    data, out = tmp_path / "rows.json", tmp_path / "out"
    _write_rows(data, 2)
    out.mkdir()
    (out / "run.json").write_text(json.dumps({"source_sha256": "another file", "split": "all",
                                              "route": "completions", "dialect": "sqlite"}))
    code = main(["eval", str(data), "--base-url", closed_port_url, "--out", str(out), "--no-progress"])
    assert code == ExitCode.USAGE
    assert "different source_sha256" in capsys.readouterr().err
