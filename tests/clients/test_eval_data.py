"""Loading evaluation files and rebuilding the publication's 500-row held-out split."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from clients.eval_data import DataError, heldout_indices, load_rows, select_rows

SQL_CREATE_CONTEXT_ROWS = 78577


def _record(index: int) -> dict[str, str]:
    return {
        "question": f"How many rows have id {index}?",
        "context": f"CREATE TABLE t{index % 7} (id INTEGER)",
        "answer": f"SELECT COUNT(*) FROM t{index % 7} WHERE id = {index}",
    }


@pytest.fixture(scope="module")
def sql_create_context_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A JSON array shaped like sql-create-context, with as many rows as the real file."""
    path = tmp_path_factory.mktemp("data") / "sql_create_context_v4.json"
    path.write_text(json.dumps([_record(i) for i in range(SQL_CREATE_CONTEXT_ROWS)]), encoding="utf-8")
    return path


def test_heldout_split_is_the_published_permutation_head(sql_create_context_file: Path) -> None:
    rows = load_rows(sql_create_context_file)
    assert len(rows) == SQL_CREATE_CONTEXT_ROWS
    heldout = select_rows(rows, "heldout", None)
    expected = np.random.default_rng(42).permutation(SQL_CREATE_CONTEXT_ROWS)[:500]
    assert [row.index for row in heldout] == expected.tolist()
    # Each selected row is the file's row at that index, not just the right number.
    assert all(row.question == _record(row.index)["question"] for row in heldout)
    assert len({row.index for row in heldout}) == 500


def test_heldout_split_follows_the_file_length(tmp_path: Path) -> None:
    assert heldout_indices(1000) == np.random.default_rng(42).permutation(1000)[:500].tolist()
    assert sorted(heldout_indices(300)) == list(range(300))


def test_limit_keeps_the_head_of_the_selection(sql_create_context_file: Path) -> None:
    rows = load_rows(sql_create_context_file)
    assert select_rows(rows, "heldout", 20) == select_rows(rows, "heldout", None)[:20]
    assert [row.index for row in select_rows(rows, "all", 3)] == [0, 1, 2]


def test_jsonl_rows_keep_their_file_positions(tmp_path: Path) -> None:
    path = tmp_path / "rows.jsonl"
    path.write_text("\n".join(json.dumps(_record(i)) for i in range(3)) + "\n\n", encoding="utf-8")
    rows = load_rows(path)
    assert [row.index for row in rows] == [0, 1, 2]
    assert rows[2].answer == _record(2)["answer"]


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ('{"question": "q", "context": "c"}\n', "answer"),
        ('{"question": "q", "context": "c", "answer": 3}\n', "answer"),
        ("not json\n", ":1: not a JSON object"),
        ('[{"question": "q"', "not valid JSON"),
        ('["just a string"]', "expected an object"),
    ],
)
def test_bad_files_name_the_problem(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(DataError, match=message):
        load_rows(path)


def test_unknown_split_is_refused(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="unknown split"):
        select_rows([], "test", None)
