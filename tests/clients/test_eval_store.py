"""The resumable log of `sqlgate eval`: what survives a crash, and refusing to mix two runs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from clients.eval_data import EvalRow
from clients.evaluation import ResultStore, RunMismatch, score_row, summarise_results
from clients.failures import GatewayFailure
from clients.gateway_client import Answer

IDENTITY = {"source_sha256": "abc", "split": "all", "route": "completions", "dialect": "sqlite"}
ROW = EvalRow(index=7, question="How many heads?", context="CREATE TABLE head (age INTEGER)",
              answer="SELECT count(*) FROM head")


def test_finished_rows_survive_a_torn_last_line(tmp_path: Path) -> None:
    store = ResultStore(tmp_path)
    store.prepare(IDENTITY, fresh=False)
    with store.open_for_append() as handle:
        handle.write(json.dumps({"index": 1, "exact_match": True}) + "\n")
        handle.write('{"index": 2, "exact_ma')  # the process died here
    assert set(store.load()) == {1}
    with store.open_for_append() as handle:  # the next run starts on a fresh line
        handle.write(json.dumps({"index": 2, "exact_match": False}) + "\n")
    assert set(store.load()) == {1, 2}


def test_another_run_in_the_same_folder_is_refused(tmp_path: Path) -> None:
    ResultStore(tmp_path).prepare(IDENTITY, fresh=False)
    with pytest.raises(RunMismatch, match="split"):
        ResultStore(tmp_path).prepare({**IDENTITY, "split": "heldout"}, fresh=False)
    ResultStore(tmp_path).prepare(IDENTITY, fresh=False)  # the same run resumes


def test_fresh_forgets_finished_rows(tmp_path: Path) -> None:
    store = ResultStore(tmp_path)
    store.prepare(IDENTITY, fresh=False)
    with store.open_for_append() as handle:
        handle.write(json.dumps({"index": 1}) + "\n")
    store.prepare({**IDENTITY, "route": "sql"}, fresh=True)
    assert store.load() == {}
    assert json.loads(store.run_path.read_text())["route"] == "sql"


def _answer(sql: str, **check: object) -> Answer:
    full_check = {"valid": True, "read_only": True, "unknown_tables": [], "unknown_columns": [], **check}
    return Answer(sql=sql, check=full_check, response={}, cache="miss", latency_s=0.25)


def test_score_of_an_answered_row() -> None:
    result = score_row(ROW, _answer("SELECT COUNT(*) FROM head;"), None, "sqlite")
    assert result["exact_match"] is True and result["normalised_match"] is True
    assert result["valid"] and result["read_only"] and result["grounded"] and result["compiles"]
    assert result["reference_compiles"] is True and result["latency_ms"] == 250.0


def test_score_of_a_row_whose_sql_was_rejected_uses_the_sql_in_the_error() -> None:
    check = {"valid": False, "read_only": False, "unknown_tables": [], "unknown_columns": [],
             "query": "DELETE FROM head"}
    failure = GatewayFailure("rejected", status=422, error_type="sql_check_error", code="unsafe_sql", check=check)
    result = score_row(ROW, None, failure, "sqlite")
    assert result["prediction"] == "DELETE FROM head"
    assert not result["valid"] and not result["read_only"] and not result["exact_match"]
    assert result["compiles"] is True  # it is SQL; the gateway's policy is what refused it
    assert (result["status"], result["error_code"]) == (422, "unsafe_sql")


def test_score_of_a_row_refused_before_the_model_has_no_prediction() -> None:
    failure = GatewayFailure("too long", status=422, error_type="invalid_request_error", code="schema_too_long")
    result = score_row(ROW, None, failure, "sqlite")
    assert result["prediction"] is None
    assert not any(result[key] for key in ("exact_match", "normalised_match", "valid", "grounded", "compiles"))


def test_summary_shares_are_over_scored_rows_and_flag_incomplete_runs() -> None:
    good = score_row(ROW, _answer("SELECT count(*) FROM head"), None, "sqlite")
    ungrounded = score_row(ROW, _answer("SELECT count(*) FROM heads", unknown_tables=["heads"]), None, "sqlite")
    summary = summarise_results([good, ungrounded], selected=3)
    assert summary["rows_scored"] == 2 and summary["complete"] is False
    assert summary["exact_match"] == 0.5 and summary["schema_grounded_sql"] == 0.5
    assert summary["compiles_sqlite"] == 0.5 and summary["valid_sql"] == 1.0
    assert summary["latency_ms"]["count"] == 2
