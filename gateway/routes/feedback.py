"""`POST /v1/feedback` (a rating of an answer, with an optional correction) and `GET /v1/feedback/export` (the
verified pairs, for the next fine-tune); the work is the feedback desk's (gateway/memory/feedback.py)."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query
from pydantic import BaseModel, ConfigDict, Field, field_validator

from gateway.deps import Record, State
from gateway.errors import ERROR_RESPONSES, ErrorResponse, StoreUnavailable
from gateway.store import StoreError
from gateway.store.records import VerifiedPair

router = APIRouter(prefix="/v1", tags=["feedback"])

FEEDBACK_RESPONSES: dict[int | str, dict[str, Any]] = {
    **{status: ERROR_RESPONSES[status] for status in (400, 401, 413, 429)},
    404: {"model": ErrorResponse, "description": "No answer has this id (`not_found`)"},
    422: {"model": ErrorResponse, "description": "The corrected SQL failed the check (`error.check` says why)"},
    503: {"model": ErrorResponse, "description": "The store is unavailable (`store_unavailable`): nothing was kept"},
}


def _text(value: str | None) -> str | None:
    if value is not None:
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            raise ValueError("contains a lone UTF-16 surrogate (such as \\ud800), which is not text") from None
    return value


class FeedbackRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: str = Field(..., min_length=1, max_length=128, description="The answer's id: the response's `id`")
    rating: Literal["up", "down"]
    # Bounded so that a whole request fits the default body cap even in 4-byte UTF-8 (the model writes <= 256 tokens).
    corrected_sql: str | None = Field(None, min_length=1, max_length=8_000,
                                      description="The right query, in the answer's dialect; checked before it "
                                                  "is kept")
    comment: str | None = Field(None, max_length=2_000)

    _readable = field_validator("id", "corrected_sql", "comment")(_text)


class VerifiedFacts(BaseModel):
    id: str
    verified_by: str | None
    verified_at: str
    origin: Literal["rating", "correction"]

    @classmethod
    def of(cls, pair: VerifiedPair) -> VerifiedFacts:
        return cls(id=pair.id, verified_by=pair.verified_by, verified_at=pair.verified_at, origin=pair.origin)


class FeedbackResponse(BaseModel):
    id: str
    object: Literal["feedback"] = "feedback"
    answer_id: str
    rating: Literal["up", "down"]
    created_at: str
    corrected: bool
    verified: VerifiedFacts | None = Field(None, description="The verified query this rating made, if any")
    retired: int = Field(..., description="Verified queries this rating retired")


@router.post("/feedback", status_code=201, response_model=FeedbackResponse, responses=FEEDBACK_RESPONSES)
async def feedback(body: FeedbackRequest, state: State, record: Record) -> FeedbackResponse:
    """Rate an answer 👍/👎, optionally with the corrected SQL; kept durably before the 201."""
    try:
        receipt = await state.feedback.rate(answer_id=body.id, rating=body.rating, corrected_sql=body.corrected_sql,
                                            comment=body.comment, key_name=record.key_name)
    except StoreError:
        raise StoreUnavailable("The feedback store is unavailable; nothing was kept. Try again.") from None
    return FeedbackResponse(id=receipt.feedback.id, answer_id=receipt.answer.id, rating=body.rating,
                            created_at=receipt.feedback.created_at, corrected=body.corrected_sql is not None,
                            verified=VerifiedFacts.of(receipt.verified) if receipt.verified else None,
                            retired=receipt.retired)


class ExportRow(BaseModel):
    question: str
    context: str
    answer: str
    origin: Literal["rating", "correction"]
    verified_by: str | None
    verified_at: str


Since = Annotated[date | None, Query(description="Only pairs verified on or after this day (YYYY-MM-DD, UTC)")]


class ExportResponse(BaseModel):
    object: Literal["list"] = "list"
    since: date | None
    data: list[ExportRow]
    counts: dict[str, int] = Field(..., description="rows, from ratings, from corrections")


@router.get("/feedback/export", response_model=ExportResponse, responses=FEEDBACK_RESPONSES)
async def export(state: State, since: Since = None) -> ExportResponse:
    """The live verified pairs (ratings and corrections) as training rows: `{question, context, answer}`."""
    try:
        pairs = await state.store.exported_pairs(since.isoformat() if since else None)
    except StoreError:
        raise StoreUnavailable("The feedback store is unavailable. Try again.") from None
    rows: dict[tuple[str, str, str], ExportRow] = {}
    for pair in pairs:
        # Stripped, as the training prompt reads them (gateway/prompt.py).
        row = ExportRow(question=pair.question.strip(), context=pair.schema.strip(), answer=pair.source_query,
                        origin=pair.origin, verified_by=pair.verified_by, verified_at=pair.verified_at)
        rows.setdefault((row.question, row.context, row.answer), row)  # the same pair verified twice: once
    data = list(rows.values())
    counts = {"rows": len(data), "ratings": sum(r.origin == "rating" for r in data),
              "corrections": sum(r.origin == "correction" for r in data)}
    return ExportResponse(since=since, data=data, counts=counts)
