"""The candidate step: when the greedy answer fails the check, ask vLLM for k samples of the same prompt in one
call, keep those that pass the whole check, and return the most-voted by canonical form. Bounded by k and a time
budget; temperature, seed and k come from the deployment's config, never from a request."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

import sqlglot
from sqlglot.errors import SqlglotError

from gateway.pipeline.verdict import Verdict
from gateway.sql_check import MODEL_DIALECT

# Failures another sample can fix. An unsafe answer is not one: it says what the question asked for (a write, a
# catalog read), and sampling until something slips through would defeat the guard's purpose.
REPAIRABLE = frozenset({"invalid_sql", "ungrounded_sql", "truncated_sql", "unanswerable_sql", "untranslatable_sql"})


@dataclass(frozen=True)
class Ballot:
    winner: Verdict | None
    passing: int
    votes: int


def canonical(sql: str) -> str:
    """The form votes are counted by: keyword case, identifier case and spacing don't split a vote."""
    try:
        parsed = sqlglot.parse_one(sql, read=MODEL_DIALECT)
        return parsed.sql(dialect=MODEL_DIALECT, normalize=True, pretty=False).lower()
    except (SqlglotError, RecursionError, ValueError):
        return " ".join(sql.lower().split())


def vote(verdicts: Sequence[Verdict]) -> Ballot:
    """The passing candidate whose canonical form most candidates share; ties go to the earliest."""
    passing = [verdict for verdict in verdicts if verdict.error_code is None]
    if not passing:
        return Ballot(winner=None, passing=0, votes=0)
    forms = [canonical(verdict.source_query) for verdict in passing]
    counts = Counter(forms)
    best = max(counts.values())
    winner = next(verdict for verdict, form in zip(passing, forms, strict=True) if counts[form] == best)
    return Ballot(winner=winner, passing=len(passing), votes=best)
