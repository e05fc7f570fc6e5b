"""The answer's vocabulary: a prepared request, what vLLM generated, and the checked answer. A leaf module: it
imports nothing of the gateway's, so the pipeline, the routes, the request record, the log and the tracer can all
use these types without an import cycle."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass(frozen=True)
class SqlRequest:
    """A request that passed the caps: everything needed to answer it, decided once."""

    question: str
    schema: str  # the whole schema: grounding, compile and the vote read it
    dialect: str  # what the answer must be written in (the analyst's database)
    prompt: str  # the exact training prompt vLLM sees
    # What of the schema went into the prompt (all of it, or the tables the question needs when it is too big).
    prompt_schema: str = ""
    schema_scope: dict[str, Any] = field(default_factory=dict)

    @property
    def sent_schema(self) -> str:
        return self.prompt_schema or self.schema


@dataclass(frozen=True)
class Generation:
    """One greedy completion as vLLM produced it, before any cleaning or checking."""

    raw_text: str
    finish_reason: str | None
    prompt_tokens: int
    completion_tokens: int
    latency_s: float = 0.0
    ttft_s: float | None = None


@dataclass(frozen=True)
class Repair:
    """What the candidate step did when the greedy answer failed the check."""

    asked: int  # candidates requested in the one sampling call
    passing: int  # candidates that passed the whole check
    votes: int  # candidates that share the winner's canonical form (0 when none passed)
    won: bool  # a candidate replaced the greedy answer
    reason: str  # why the step ran: the greedy answer's error code
    latency_s: float = 0.0
    timed_out: bool = False

    def as_dict(self) -> dict[str, Any]:
        return {"asked": self.asked, "passing": self.passing, "votes": self.votes, "won": self.won,
                "reason": self.reason, "latency_ms": round(self.latency_s * 1000, 1), "timed_out": self.timed_out}


@dataclass
class SqlAnswer:
    """The checked answer: `query` is the text that may leave the gateway (when `error_code` is None)."""

    query: str  # in the requested dialect
    source_query: str  # as the model wrote it, cleaned (SQLite family)
    raw_text: str
    finish_reason: str | None
    prompt_tokens: int
    completion_tokens: int
    check: dict[str, Any]
    repair: Repair | None = None
    cached: bool = False
    upstream_latency_s: float = 0.0
    ttft_s: float | None = None
    extra_tokens: dict[str, int] = field(default_factory=dict)  # the candidate call's usage, when it ran
    # {candidates, agreeing, ratio} of the vote that chose this answer; None when no vote ran (or it had no samples)
    agreement: dict[str, Any] | None = None
    answered_by: str | None = None  # the model whose answer this is (the escalation model, when it answered)

    @property
    def error_code(self) -> str | None:
        code = self.check.get("error_code")
        return str(code) if code else None

    @property
    def valid(self) -> bool:
        return self.error_code is None

    @property
    def usage(self) -> dict[str, int]:
        prompt = self.prompt_tokens + self.extra_tokens.get("prompt_tokens", 0)
        completion = self.completion_tokens + self.extra_tokens.get("completion_tokens", 0)
        return {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}

    def for_cache(self) -> dict[str, Any]:
        """What the cache keeps: the model's text and usage; the check is re-run on every hit."""
        stored = asdict(self)
        for derived in ("query", "check", "cached", "upstream_latency_s", "ttft_s"):
            stored.pop(derived)
        return stored
