"""Escalation: when too few candidates agree (below `SQLGATE_SQL_MIN_AGREEMENT`), ask a second OpenAI-compatible
upstream (`SQLGATE_ESCALATION_URL`, e.g. a larger model on the same vLLM host) the same prompt, and put its
answer through the same check and the same vote: its greedy answer and its own k samples. The response and the
trace then say which model answered (`check.answered_by`)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from gateway.answer import SqlRequest
from gateway.pipeline.candidates import Candidate, Completer, Draw, draw_candidates
from gateway.pipeline.verdict import Verdict

logger = logging.getLogger("sqlgate.pipeline")


@dataclass(frozen=True)
class Consulted:
    """The second model's greedy answer (None when its call failed) and its samples."""

    greedy: Candidate | None
    draw: Draw


class Escalation:
    """The second upstream, called only for answers the first model's candidates did not agree on."""

    def __init__(self, upstream: Completer, model: str, *, greedy_fields: dict[str, Any],
                 candidate_fields: dict[str, Any], k: int, budget_s: float) -> None:
        self._upstream = upstream
        self.model = model
        self._greedy_fields = greedy_fields
        self._candidate_fields = candidate_fields
        self._k = k
        self._budget_s = budget_s

    async def consult(self, request: SqlRequest, judged: Callable[[str, str | None], Verdict]) -> Consulted:
        """Its greedy answer and its k samples, both bounded by the candidate budget; never raises for it."""
        base = {"model": self.model, "prompt": request.prompt}
        greedy_call = asyncio.create_task(self._greedy({**base, **self._greedy_fields}, judged))
        draw = await draw_candidates(self._upstream, {**base, **self._candidate_fields}, k=self._k,
                                     budget_s=self._budget_s, judged=judged)
        return Consulted(await greedy_call, draw)

    async def _greedy(self, payload: dict[str, Any], judged: Callable[[str, str | None], Verdict]
                      ) -> Candidate | None:
        try:
            async with asyncio.timeout(self._budget_s):
                body = await self._upstream.complete(payload)
            choice = body["choices"][0]
            text, finish_reason = str(choice["text"]), choice.get("finish_reason")
        except Exception as exc:  # a failed escalation leaves the first model's outcome standing
            logger.warning("escalation call failed: %s", type(exc).__name__)
            return None
        return Candidate(judged(text, finish_reason), finish_reason, text)
