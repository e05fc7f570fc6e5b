"""The transpile step's vocabulary: its result and its refusal. A leaf: imports nothing of the gateway's."""

from __future__ import annotations

from dataclasses import dataclass

# What the model writes: the SQLite of its training data (b-mc2/sql-create-context).
MODEL_DIALECT = "sqlite"


@dataclass(frozen=True)
class Transpiled:
    """A query in `dialect`, translated from `source_dialect` (the same text when the two are equal)."""

    text: str
    source_dialect: str
    dialect: str


class TranspileRefused(Exception):
    """The query can't be written faithfully in the requested dialect; `reason` is worded for the analyst."""

    code = "untranslatable_sql"

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason
