"""Evaluation rows: JSONL or the sql-create-context JSON array, and the publication's held-out split."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

HELDOUT_SEED = 42
HELDOUT_ROWS = 500
REQUIRED_FIELDS = ("question", "context", "answer")


class DataError(ValueError):
    """The evaluation file cannot be used; the message names the file and the row."""


@dataclass(frozen=True)
class EvalRow:
    index: int  # position in the file, the row's identity across resumed runs
    question: str
    context: str
    answer: str


def load_rows(path: Path) -> list[EvalRow]:
    """Rows of `question`, `context`, `answer` from a JSON array file or a JSONL file."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise DataError(f"cannot read {path}: {exc}") from exc
    if text.lstrip().startswith("["):
        try:
            records = json.loads(text)
        except json.JSONDecodeError as exc:
            raise DataError(f"{path} is not valid JSON: {exc}") from exc
        return [_row(record, index, path) for index, record in enumerate(records)]
    rows: list[EvalRow] = []
    for line_number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            raise DataError(f"{path}:{line_number}: not a JSON object: {exc.msg}") from exc
        rows.append(_row(record, len(rows), path, line_number))
    return rows


def _row(record: Any, index: int, path: Path, line_number: int | None = None) -> EvalRow:
    where = f"{path}:{line_number}" if line_number is not None else f"{path} row {index}"
    if not isinstance(record, dict):
        raise DataError(f"{where}: expected an object with {', '.join(REQUIRED_FIELDS)}")
    missing = [name for name in REQUIRED_FIELDS if not isinstance(record.get(name), str)]
    if missing:
        raise DataError(f"{where}: missing or non-string field(s): {', '.join(missing)}")
    return EvalRow(
        index=index, question=record["question"], context=record["context"], answer=record["answer"]
    )


def heldout_indices(row_count: int) -> list[int]:
    """The publication's held-out rows: `train_test_split(test_size=0.05, seed=42)`, first 500 test rows.

    `datasets` draws `numpy.random.default_rng(seed).permutation(n)` and the test part is its head, so these
    are the same rows in the same order.
    """
    import numpy as np  # only this split needs numpy (it comes with matplotlib)

    permutation = np.random.default_rng(HELDOUT_SEED).permutation(row_count)
    return [int(index) for index in permutation[:HELDOUT_ROWS]]


def select_rows(rows: list[EvalRow], split: str, limit: int | None) -> list[EvalRow]:
    """`all` keeps the file's order; `heldout` rebuilds the published split; `limit` keeps the first N."""
    if split == "heldout":
        chosen = [rows[index] for index in heldout_indices(len(rows))]
    elif split == "all":
        chosen = list(rows)
    else:
        raise DataError(f"unknown split '{split}' (choose all or heldout)")
    return chosen if limit is None else chosen[:limit]


def file_digest(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
