"""`sqlgate feedback rate` and `sqlgate feedback export` against the real gateway (a fake upstream stands in for the
model and counts its calls): an answer rated up from the command line answers again from memory; the export's
rows are training rows that `make quality`'s reader (benchmarks/quality.py: load_input) takes as they are."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from benchmarks.quality import load_input
from clients.cli import main
from clients.failures import ExitCode
from tests import faults
from tests.clients.conftest import GatewayFactory
from tests.servers import fake_upstream

SINGER = "CREATE TABLE singer (Singer_ID int, Name text, Country text, Age int)"
QUESTION = "How many singers are from France?"
COUNT = "SELECT count(*) FROM singer WHERE Country = 'France'"


def ask_json(url: str, api_key: str, question: str, schema_file: Path, capsys: pytest.CaptureFixture[str]
             ) -> dict[str, object]:
    code = main(["ask", question, "--schema", str(schema_file), "--route", "sql", "--json", "--base-url", url,
                 "--api-key", api_key])
    out = capsys.readouterr().out
    assert code == ExitCode.OK, out
    body: dict[str, object] = json.loads(out)
    return body


@pytest.fixture
def schema_file(tmp_path: Path) -> Path:
    path = tmp_path / "schema.sql"
    path.write_text(SINGER + "\n", encoding="utf-8")
    return path


def test_rate_up_then_the_same_question_answers_from_memory_and_the_export_round_trips(
        serve_gateway: GatewayFactory, api_key: str, schema_file: Path, tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    connection = ["--base-url", "{url}", "--api-key", api_key]
    with fake_upstream(faults.ok(COUNT), faults.ok("SELECT count(*) FROM singer")) as upstream, \
            serve_gateway(upstream_url=upstream.base_url, sql_candidates=0, cache_enabled=False) as url:
        args = [part.replace("{url}", url) for part in connection]
        first = ask_json(url, api_key, QUESTION, schema_file, capsys)
        assert main(["feedback", "rate", str(first["id"]), "up", *args]) == ExitCode.OK
        rated = capsys.readouterr().out
        again = ask_json(url, api_key, "How many singers are from Spain?", schema_file, capsys)
        other = ask_json(url, api_key, "How many singers?", schema_file, capsys)
        fixed = tmp_path / "fixed.sql"
        fixed.write_text("SELECT count(Singer_ID) FROM singer\n", encoding="utf-8")
        assert main(["feedback", "rate", str(other["id"]), "down", "--correct", str(fixed), "--comment", "ids",
                     *args]) == ExitCode.OK
        capsys.readouterr()
        out = tmp_path / "export" / "verified.jsonl"
        assert main(["feedback", "export", "--out", str(out), *args]) == ExitCode.OK
        counted = capsys.readouterr().err
        assert main(["feedback", "export", "--since", "2999-01-01", *args]) == ExitCode.OK
        future = capsys.readouterr()
    assert f"rated {first['id']} up; verified query vp_" in rated
    assert again["sql"] == "SELECT count(*) FROM singer WHERE Country = 'Spain'"
    assert again["check"]["source"] == "verified"  # type: ignore[index]
    assert len(upstream.requests) == 2  # the first question and the third; never the second
    rows = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert rows == [{"question": QUESTION, "context": SINGER, "answer": COUNT},
                    {"question": "How many singers?", "context": SINGER,
                     "answer": "SELECT count(Singer_ID) FROM singer"}]
    assert "exported 2 rows to" in counted and "1 from ratings, 1 from corrections" in counted
    # The reader make quality uses takes the export as it is.
    read = load_input(out)
    assert [(row["question"], row["context"], row["answer"]) for row in read] == [
        (row["question"], row["context"], row["answer"]) for row in rows]
    assert future.out == "" and "exported 0 rows since 2999-01-01" in future.err


def test_rating_an_unknown_answer_or_a_bad_correction_exits_with_its_reason(
        serve_gateway: GatewayFactory, api_key: str, schema_file: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with fake_upstream(faults.ok(COUNT)) as upstream, \
            serve_gateway(upstream_url=upstream.base_url, sql_candidates=0) as url:
        args = ["--base-url", url, "--api-key", api_key]
        unknown = main(["feedback", "rate", "sql-does-not-exist", "up", *args])
        unknown_err = capsys.readouterr().err
        first = ask_json(url, api_key, QUESTION, schema_file, capsys)
        refused = main(["feedback", "rate", str(first["id"]), "down", "--correct", "DROP TABLE singer", *args])
        refused_err = capsys.readouterr().err
    assert unknown == ExitCode.USAGE and "(HTTP 404, invalid_request_error, not_found)" in unknown_err
    assert refused == ExitCode.SQL_REJECTED and "the correction was not kept" in refused_err


def test_feedback_help_names_both_actions(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["feedback", "--help"])
    assert exit_info.value.code == 0
    text = capsys.readouterr().out
    assert "rate" in text and "export" in text
    with pytest.raises(SystemExit):
        main(["feedback", "export", "--since", "last week"])
    assert "expected a day as YYYY-MM-DD" in capsys.readouterr().err
