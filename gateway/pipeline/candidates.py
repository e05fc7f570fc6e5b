"""The candidate step: when the greedy answer fails the check, ask vLLM for k samples of the same prompt in one
call, keep those that pass the whole check, and return the most-voted by canonical form. Bounded by k and a time
budget; temperature, seed and k come from the deployment's config, never from a request."""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal, Protocol

import sqlglot
from sqlglot.errors import SqlglotError

from gateway.answer import Repair
from gateway.pipeline.verdict import Verdict
from gateway.sql_check import MODEL_DIALECT
from gateway.sql_check.grammar import schema_grammar

logger = logging.getLogger("sqlgate.pipeline")

# Failures another sample can fix. An unsafe answer is not one: it says what the question asked for (a write, a
# catalog read), and sampling until something slips through would defeat the guard's purpose.
REPAIRABLE = frozenset({"invalid_sql", "ungrounded_sql", "truncated_sql", "unanswerable_sql", "untranslatable_sql"})


# sample: k free samples. grammar: k samples constrained by vLLM's structured outputs to SQL over the request's
# schema (gateway/sql_check/grammar.py); docs/eval.md has the measurement that chose the default.
CandidateStrategy = Literal["sample", "grammar"]


def candidate_fields(fields: dict[str, Any], strategy: CandidateStrategy, schema: str) -> dict[str, Any]:
    """The candidate call's decoding fields for one request. vLLM >= 0.12 reads `structured_outputs`; an older
    field name would be ignored silently (FACTS.md), which tests/e2e/test_candidate_grammar.py guards against."""
    grammar = schema_grammar(schema) if strategy == "grammar" else None
    return fields if grammar is None else {**fields, "structured_outputs": {"grammar": grammar}}


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


class Completer(Protocol):
    async def complete(self, payload: dict[str, Any]) -> dict[str, Any]: ...


@dataclass(frozen=True)
class Candidate:
    verdict: Verdict
    finish_reason: str | None
    raw_text: str


async def sample_candidates(upstream: Completer, payload: dict[str, Any], *, k: int, budget_s: float,
                            judged: Callable[[str, str | None], Verdict], reason: str
                            ) -> tuple[Candidate | None, Repair, dict[str, int]]:
    """k samples in one call, each judged, then voted; bounded by `budget_s`. Never raises for the upstream: a
    candidate call that fails or runs out of time leaves the greedy refusal standing."""
    started = time.perf_counter()
    try:
        async with asyncio.timeout(budget_s):
            body = await upstream.complete(payload)
    except TimeoutError:
        return None, Repair(asked=k, passing=0, votes=0, won=False, reason=reason,
                            latency_s=time.perf_counter() - started, timed_out=True), {}
    except Exception as exc:
        logger.warning("candidate call failed; the greedy answer's refusal stands: %s", type(exc).__name__)
        return None, Repair(asked=k, passing=0, votes=0, won=False, reason=reason,
                            latency_s=time.perf_counter() - started), {}
    candidates = [Candidate(judged(choice["text"], choice.get("finish_reason")), choice.get("finish_reason"),
                            choice["text"])
                  for choice in body.get("choices") or () if isinstance(choice, dict)
                  and isinstance(choice.get("text"), str)]
    ballot = vote([candidate.verdict for candidate in candidates])
    usage = body.get("usage") or {}
    extra = {"prompt_tokens": int(usage.get("prompt_tokens") or 0),
             "completion_tokens": int(usage.get("completion_tokens") or 0)}
    repair = Repair(asked=k, passing=ballot.passing, votes=ballot.votes, won=ballot.winner is not None,
                    reason=reason, latency_s=time.perf_counter() - started)
    winner = next((candidate for candidate in candidates if candidate.verdict is ballot.winner), None)
    return winner, repair, extra
