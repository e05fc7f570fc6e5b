"""The candidate step of the answer pipeline: when to sample (the policy), the vote by results, what the step
did (`repair`), how sure the answer is (`agreement`), the second model when too few agree (escalation), and the
refusal when even that does not settle it (`low_confidence`)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from gateway.answer import Repair, SqlRequest
from gateway.observability.metrics import Metrics
from gateway.pipeline.candidates import (
    REPAIRABLE,
    Ballot,
    Candidate,
    CandidatePolicy,
    CandidateStrategy,
    Completer,
    Draw,
    candidate_fields,
    draw_candidates,
)
from gateway.pipeline.escalation import Escalation
from gateway.pipeline.results_vote import ResultsBallot, results_vote
from gateway.pipeline.verdict import Verdict, refuse
from gateway.settings import GenerationParams


@dataclass(frozen=True)
class CandidateBudget:
    k: int  # samples in the one call; below 2 the step is off
    budget_s: float
    strategy: CandidateStrategy = "grammar"
    policy: CandidatePolicy = "on_failure"
    # Below this share of agreeing candidates an answer is refused as low_confidence; None: never.
    min_agreement: float | None = None

    @property
    def enabled(self) -> bool:
        return self.k >= 2

    @property
    def always(self) -> bool:
        return self.enabled and self.policy == "always"


@dataclass
class Settled:
    """What the candidate step decided for one request."""

    chosen: Candidate
    repair: Repair | None = None
    agreement: dict[str, Any] | None = None
    vote: dict[str, Any] | None = None  # how the vote ran: method, instances, ms
    extra_tokens: dict[str, int] = field(default_factory=dict)
    answered_by: str | None = None  # the escalation model, when it answered


Judged = Callable[[str, str | None], Verdict]


def candidate_call_fields(generation: GenerationParams, k: int) -> dict[str, Any]:
    """The sampling call's decoding fields: the deployment's greedy ones with its `[candidates]` sampling and n = k."""
    return {**generation.as_upstream_fields(), **generation.candidates.as_upstream_fields(k)}


class VoteStage:
    def __init__(self, *, upstream: Completer, budget: CandidateBudget, fields: dict[str, Any],
                 payload: Callable[[SqlRequest, dict[str, Any]], dict[str, Any]], metrics: Metrics,
                 escalation: Escalation | None = None) -> None:
        self._upstream = upstream
        self.budget = budget
        self._fields = fields
        self._payload = payload
        self._metrics = metrics
        self._escalation = escalation

    def start_draw(self, request: SqlRequest, judged: Judged) -> asyncio.Task[Draw] | None:
        """With the `always` policy, the sampling call, started now so that it runs next to the greedy call."""
        return asyncio.create_task(self._draw(request, judged)) if self.budget.always else None

    async def _draw(self, request: SqlRequest, judged: Judged) -> Draw:
        # The grammar offers the names the model was shown (the whole schema, or the tables sent).
        fields = candidate_fields(self._fields, self.budget.strategy, request.sent_schema)
        return await draw_candidates(self._upstream, self._payload(request, fields), k=self.budget.k,
                                     budget_s=self.budget.budget_s, judged=judged)

    async def settle(self, request: SqlRequest, greedy: Candidate, judged: Judged,
                     drawing: asyncio.Task[Draw] | None) -> Settled:
        """The answer for this request given its greedy candidate (and the sampling call, if already running)."""
        code = greedy.verdict.error_code
        if not (self.budget.enabled and (code in REPAIRABLE or (code is None and self.budget.always))):
            if drawing is not None:
                drawing.cancel()  # an unsafe greedy answer is refused as it is: no sample may replace it
            return Settled(greedy)
        draw = await drawing if drawing is not None else await self._draw(request, judged)
        counted = await self._vote(request, (greedy, *draw.candidates))
        settled = self._decide(greedy, draw, counted)
        if self._too_unsure(settled.agreement) and self._escalation is not None:
            settled = await self._escalate(request, judged, settled, counted)
        if settled.chosen.verdict.error_code is None and self._too_unsure(settled.agreement):
            threshold = self.budget.min_agreement or 0.0
            settled.chosen = Candidate(_low_confidence(settled.chosen.verdict, settled.agreement or {},
                                                       counted.ballot, threshold),
                                       settled.chosen.finish_reason, settled.chosen.raw_text)
        return settled

    async def _vote(self, request: SqlRequest, candidates: tuple[Candidate, ...]) -> ResultsBallot:
        # It runs SQL on synthesized databases: milliseconds of CPU, kept off the event loop.
        # Databases of the tables the model was shown: a warehouse of thousands of tables is never built whole.
        counted = await asyncio.to_thread(results_vote, candidates, schema=request.sent_schema,
                                          question=request.question)
        self._metrics.vote(counted.seconds)
        return counted

    def _decide(self, greedy: Candidate, draw: Draw, counted: ResultsBallot) -> Settled:
        """The vote's winner (the greedy answer unless the samples outvote it or it failed), what the step did, and
        the agreement (None when the sampling call did not answer: no confidence can be claimed)."""
        ballot = counted.ballot
        winner = ballot.winner
        replaced = winner is not None and winner is not greedy
        agreement = ballot.agreement() if draw.complete else None
        if agreement is not None:
            self._metrics.agreement(agreement["ratio"])
        repair = None
        if greedy.verdict.error_code is not None or replaced:
            repair = Repair(asked=draw.asked, passing=sum(c.verdict.error_code is None for c in draw.candidates),
                            votes=ballot.votes, won=replaced, reason=greedy.verdict.error_code or "outvoted",
                            latency_s=draw.latency_s, timed_out=draw.timed_out)
            self._metrics.repair(replaced, draw.latency_s)
        chosen = winner if replaced and winner is not None else greedy
        return Settled(chosen, repair, agreement, _vote_facts(counted), draw.extra_tokens)

    async def _escalate(self, request: SqlRequest, judged: Judged, first: Settled, counted: ResultsBallot
                        ) -> Settled:
        """The second model's greedy answer and samples, voted the same way; taken when it is sure enough, or
        surer than the first model was."""
        assert self._escalation is not None
        consulted = await self._escalation.consult(request, judged)
        if consulted.greedy is None:
            return first
        second = await self._vote(request, (consulted.greedy, *consulted.draw.candidates))
        settled = self._decide(consulted.greedy, consulted.draw, second)
        before = (first.agreement or {}).get("ratio", 0.0)
        after = (settled.agreement or {}).get("ratio", -1.0)
        if settled.chosen.verdict.error_code is not None or after <= before:
            return first
        settled.answered_by = self._escalation.model
        settled.extra_tokens = _added(first.extra_tokens, settled.extra_tokens)
        return settled

    def _too_unsure(self, agreement: dict[str, Any] | None) -> bool:
        threshold = self.budget.min_agreement
        return threshold is not None and agreement is not None and agreement["ratio"] < threshold


def _vote_facts(counted: ResultsBallot) -> dict[str, Any]:
    return {"method": counted.ballot.method, "instances": counted.instances, "ms": round(counted.seconds * 1000, 2)}


def _added(one: dict[str, int], two: dict[str, int]) -> dict[str, int]:
    return {key: one.get(key, 0) + two.get(key, 0) for key in {*one, *two}}


def _low_confidence(verdict: Verdict, agreement: dict[str, Any], ballot: Ballot, threshold: float) -> Verdict:
    """A passing answer too few candidates agree with: refused, with the competing queries for the analyst."""
    competing = [{"query": group.best.verdict.query, "votes": len(group.members)} for group in ballot.groups[:4]]
    return refuse(verdict, code="low_confidence", problem="low_agreement",
                  message=(f"only {agreement.get('agreeing')} of {agreement.get('candidates')} candidate queries "
                           f"agree, below the {threshold:g} this gateway requires"),
                  competing=competing)
