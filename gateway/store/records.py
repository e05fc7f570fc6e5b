"""What the durable store keeps, as plain rows (a leaf module: it imports nothing of the gateway's).

Times are ISO 8601 text in UTC with microseconds (`2025-12-03T14:05:09.123456Z`): they sort as text, in SQLite and
PostgreSQL alike."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal

Rating = Literal["up", "down"]
Origin = Literal["rating", "correction"]


class StoreError(Exception):
    """The database could not be reached or refused the operation; the message names no URL or password."""


def utc_now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@dataclass(frozen=True)
class AnswerRow:
    """One valid answer the gateway gave, kept so that feedback on its id can find what was asked and answered."""

    id: str
    created_at: str
    key_name: str | None
    question: str
    schema: str  # the CREATE TABLE text as sent (stored once per distinct text)
    fingerprint: str  # gateway.memory.fingerprint.schema_fingerprint(schema)
    dialect: str
    query: str  # as returned, in `dialect`
    source_query: str  # the SQLite the check passed (what memory keeps and re-checks)
    source: str  # generated | cache | verified
    verified_id: str | None  # the verified pair it was answered from (source = verified)
    trace_id: str | None


@dataclass(frozen=True)
class FeedbackRow:
    id: str
    answer_id: str
    created_at: str
    key_name: str | None
    rating: Rating
    corrected_sql: str | None  # the correction as the analyst wrote it (in the answer's dialect)
    comment: str | None


@dataclass(frozen=True)
class VerifiedPair:
    """A question and the SQL a person vouched for, over one schema (by fingerprint)."""

    id: str
    fingerprint: str
    question_key: str  # gateway.memory.question.QuestionShape.key of `question`
    question: str
    schema: str
    source_query: str  # SQLite, checked
    origin: Origin
    answer_id: str | None
    feedback_id: str | None
    verified_by: str | None
    verified_at: str
    retired_at: str | None = None


@dataclass(frozen=True)
class FeedbackChange:
    """Everything one rating changes, written in one transaction: the rating itself, the pair it adds (a 👍 or a
    correction) and the pairs it retires (a 👎 or a correction retires what the answer came from or created)."""

    feedback: FeedbackRow
    add: VerifiedPair | None
    retire_from_answer: str | None  # pairs created from this answer id
    retire_pair: str | None  # the pair the answer was served from


@dataclass(frozen=True)
class FeedbackOutcome:
    retired: int
    added: VerifiedPair | None
