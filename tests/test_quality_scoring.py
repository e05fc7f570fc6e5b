"""The quality benchmark's figures, recomputed from rows alone (benchmarks/quality_scoring.py)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from benchmarks.quality_scoring import fences_stripped, read_rows, score_rows

SCHEMA = "CREATE TABLE singer (Singer_ID int, Name text, Age int)"
GOLD = "SELECT count(*) FROM singer"


@pytest.mark.parametrize(("text", "expected"), [
    ("```sql\nSELECT count(*) FROM singer\n```\nThis counts singers.", "SELECT count(*) FROM singer\n"),
    ("Here:\n```SQL SELECT 1```", "SELECT 1"),
    ("```\nSELECT 2;\n``` and ```sql\nSELECT 3\n```", "SELECT 2;\n"),
    ("SELECT count(*) FROM singer", "SELECT count(*) FROM singer"),
    ("```sql\nSELECT 1", "```sql\nSELECT 1"),  # an unclosed fence is no block: the whole text
])
def test_fences_stripped_takes_the_first_closed_block_else_the_whole_text(text: str, expected: str) -> None:
    assert fences_stripped(text) == expected


def row(index: int, **fields: object) -> dict[str, object]:
    base: dict[str, object] = {"index": index, "db_id": "music", "question": "How many singers?",
                               "context": SCHEMA, "answer": GOLD, "direct_ms": 100.0 + index, "gateway_ms": 120.0}
    return {**base, **fields}


def test_figures_follow_the_definitions() -> None:
    rows = [
        # fenced direct answer: a miss raw, a hit once stripped; the gateway returns the bare SQL
        row(0, direct_text="```sql\nSELECT count(*) FROM singer\n```", gateway_status=200,
            gateway_sql="SELECT count(*) FROM singer", gateway_code=None),
        # direct writes a column of no table; the gateway refuses it, its candidate step ran and lost
        row(1, direct_text="SELECT count(*) FROM singer WHERE rating > 3", gateway_status=422, gateway_sql=None,
            gateway_code="invalid_sql", gateway_repair={"won": False, "latency_ms": 900.0}),
        # the candidate step won: a different but compiling query
        row(2, direct_text="SELECT Name, FROM singer", gateway_status=200, gateway_sql="SELECT Name FROM singer",
            gateway_code=None, gateway_repair={"won": True, "latency_ms": 700.0}),
        # vLLM failed on the direct call
        row(3, direct_text=None, gateway_status=200, gateway_sql="select COUNT(*)  from singer;",
            gateway_code=None),
    ]
    report = score_rows(rows)
    direct, gateway = report["direct"], report["gateway"]
    assert report["rows"] == 4
    assert direct["exact_match"] == 0.0 and direct["exact_match_fences_stripped"] == 0.25
    assert direct["compile_rate"] == 0.25 and direct["errors"] == 1
    assert gateway["exact_match"] == 0.5  # rows 0 and 3 (case, spaces and ';' don't count)
    assert gateway["normalized_match"] == 0.5
    assert gateway["compile_rate_of_200"] == 1.0 and gateway["answered_200"] == 0.75
    assert gateway["refusal_rate"] == 0.25 and gateway["refusal_codes"] == {"invalid_sql": 1}
    assert gateway["gold_refusal_rate"] == 0.0
    assert gateway["repair_rate"] == 0.5 and gateway["repair_won_rate"] == 0.5
    assert gateway["repair_latency"]["p50_ms"] == 800.0
    assert report["gateway_minus_direct_fences_stripped_pp"] == 25.0
    assert report["per_database"]["music"]["rows"] == 4


def test_rows_file_keeps_the_last_line_of_a_row(tmp_path: Path) -> None:
    path = tmp_path / "rows.jsonl"
    lines = [row(1, direct_text=None), row(0, direct_text="x"), row(1, direct_text="SELECT 1")]
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))
    assert [(r["index"], r["direct_text"]) for r in read_rows(path)] == [(0, "x"), (1, "SELECT 1")]
