"""The candidate step: k samples of the same prompt in one vLLM call, each judged by the whole check, then a vote
among the greedy answer and the samples. Bounded by k and a time budget; temperature, seed and k come from the
deployment's config, never from a request.

When it runs is the policy: `on_failure` (only when the greedy answer fails for a reason sampling can fix) or
`always` (every request, the sampling call sent next to the greedy one, so the vote measures agreement: the share
of candidates that agree with the answer is its confidence).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

import sqlglot
from sqlglot.errors import SqlglotError

from gateway.pipeline.verdict import Verdict
from gateway.sql_check import MODEL_DIALECT
from gateway.sql_check.grammar import schema_grammar

logger = logging.getLogger("sqlgate.pipeline")

# Failures another sample can fix. An unsafe answer is not one: it says what the question asked for (a write, a
# catalog read), and sampling until something slips through would defeat the guard's purpose.
REPAIRABLE = frozenset({"invalid_sql", "ungrounded_sql", "truncated_sql", "unanswerable_sql", "untranslatable_sql"})

# sample: k free samples. grammar: k samples constrained by vLLM's structured outputs to SQL over the request's
# schema (gateway/sql_check/grammar.py); docs/eval.md has the measurements that chose each target's default.
CandidateStrategy = Literal["sample", "grammar"]
# on_failure: sample only when the greedy answer fails the check; always: sample for every request and vote.
CandidatePolicy = Literal["on_failure", "always"]


def candidate_fields(fields: dict[str, Any], strategy: CandidateStrategy, schema: str) -> dict[str, Any]:
    """The candidate call's decoding fields for one request. vLLM >= 0.12 reads `structured_outputs`; an older
    field name would be ignored silently (FACTS.md), which tests/e2e/test_candidate_grammar.py guards against."""
    grammar = schema_grammar(schema) if strategy == "grammar" else None
    return fields if grammar is None else {**fields, "structured_outputs": {"grammar": grammar}}


def canonical(sql: str) -> str:
    """The form votes are counted by: keyword case, identifier case and spacing don't split a vote."""
    try:
        parsed = sqlglot.parse_one(sql, read=MODEL_DIALECT)
        return parsed.sql(dialect=MODEL_DIALECT, normalize=True, pretty=False).lower()
    except (SqlglotError, RecursionError, ValueError):
        return " ".join(sql.lower().split())


@dataclass(frozen=True)
class Candidate:
    verdict: Verdict
    finish_reason: str | None
    raw_text: str


@dataclass(frozen=True)
class Group:
    """Candidates that agree (the same vote key), best first."""

    members: tuple[Candidate, ...]

    @property
    def best(self) -> Candidate:
        return self.members[0]


@dataclass(frozen=True)
class Ballot:
    """The vote over every candidate considered (the greedy answer first, then the samples)."""

    considered: int  # every candidate, passing or not: a failing one is a vote for no answer
    groups: tuple[Group, ...]  # passing candidates grouped by agreement, best first (see `vote`)
    method: str = "canonical"  # what agreement meant: the same SQL (canonical) or the same rows (results)

    @property
    def winner(self) -> Candidate | None:
        return self.groups[0].best if self.groups else None

    @property
    def votes(self) -> int:
        return len(self.groups[0].members) if self.groups else 0

    @property
    def passing(self) -> int:
        return sum(len(group.members) for group in self.groups)

    def agreement(self) -> dict[str, Any]:
        """`{candidates, agreeing, ratio}`: how many of the candidates agree with the answer."""
        ratio = self.votes / self.considered if self.considered else 0.0
        return {"candidates": self.considered, "agreeing": self.votes, "ratio": round(ratio, 4)}


@dataclass(frozen=True)
class VoteForm:
    """What a candidate is grouped by, and whether what it returns is nothing at all (a weaker answer)."""

    form: str
    empty: bool = False


# For each candidate its form, or None when it can't take part (it did not run): it then agrees with nothing.
VoteKey = Callable[[Sequence[Candidate]], Sequence[VoteForm | None]]


def canonical_keys(candidates: Sequence[Candidate]) -> list[VoteForm | None]:
    """Agreement by canonical form of the SQL the model wrote."""
    return [VoteForm(canonical(candidate.verdict.source_query)) for candidate in candidates]


def vote(candidates: Sequence[Candidate], key: VoteKey = canonical_keys, method: str = "canonical") -> Ballot:
    """Group the passing candidates by `key`. Best first: a group that returns rows before one that returns nothing
    anywhere (a join that never meets, a contradiction), then the larger group, then the one holding the earliest
    candidate (the greedy answer, when it passes)."""
    passing = [candidate for candidate in candidates if candidate.verdict.error_code is None]
    grouped: dict[str, list[Candidate]] = {}
    empty: dict[str, bool] = {}
    for candidate, form in zip(passing, key(passing), strict=True):
        if form is not None:
            grouped.setdefault(form.form, []).append(candidate)
            empty[form.form] = form.empty
    # dicts keep insertion order, and sorted() is stable: equal ranks stay in order of first appearance.
    ranked = sorted(grouped.items(), key=lambda item: (empty[item[0]], -len(item[1])))
    return Ballot(considered=len(candidates), groups=tuple(Group(tuple(members)) for _, members in ranked),
                  method=method)


class Completer(Protocol):
    async def complete(self, payload: dict[str, Any]) -> dict[str, Any]: ...


@dataclass(frozen=True)
class Draw:
    """What the one sampling call returned: the judged samples, or why there are none."""

    asked: int
    candidates: tuple[Candidate, ...] = ()
    latency_s: float = 0.0
    timed_out: bool = False
    failed: bool = False  # the call itself failed (an upstream error): says nothing about the answer
    extra_tokens: dict[str, int] = field(default_factory=dict)

    @property
    def complete(self) -> bool:
        """The call answered: a vote over these samples means something."""
        return not (self.timed_out or self.failed)


async def draw_candidates(upstream: Completer, payload: dict[str, Any], *, k: int, budget_s: float,
                          judged: Callable[[str, str | None], Verdict]) -> Draw:
    """k samples in one call, each judged; bounded by `budget_s`. Never raises for the upstream: a call that fails
    or runs out of time is a draw with no candidates, and the greedy answer stands alone."""
    started = time.perf_counter()
    try:
        async with asyncio.timeout(budget_s):
            body = await upstream.complete(payload)
    except TimeoutError:
        return Draw(asked=k, latency_s=time.perf_counter() - started, timed_out=True)
    except Exception as exc:
        logger.warning("candidate call failed; the greedy answer stands alone: %s", type(exc).__name__)
        return Draw(asked=k, latency_s=time.perf_counter() - started, failed=True)
    candidates = tuple(Candidate(judged(choice["text"], choice.get("finish_reason")), choice.get("finish_reason"),
                                 choice["text"])
                       for choice in body.get("choices") or () if isinstance(choice, dict)
                       and isinstance(choice.get("text"), str))
    usage = body.get("usage") or {}
    extra = {"prompt_tokens": int(usage.get("prompt_tokens") or 0),
             "completion_tokens": int(usage.get("completion_tokens") or 0)}
    return Draw(asked=k, candidates=candidates, latency_s=time.perf_counter() - started, extra_tokens=extra)
