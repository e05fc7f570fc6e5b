"""The feedback desk: one rating of one answer, kept durably, and what it teaches the memory.

    👍                the answer becomes a verified pair (unless it came from one)
    👎                the pairs the answer came from or created are retired
    a correction      checked like a model's answer (refused with the check's 422 when it fails), kept as a
                      verified pair; what the answer came from or created is retired

The rating, the pair it adds and the pairs it retires are one transaction; once the route has answered 2xx, it is
on disk (SQLite) or committed (PostgreSQL). Then it is counted and sent to Langfuse as a score on the answer's
trace."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

import sqlglot
from sqlglot.errors import SqlglotError

from gateway.errors import NotFound, SqlRejected
from gateway.memory.answer_log import AnswerLog
from gateway.memory.question import question_shape
from gateway.memory.recall import new_pair_id
from gateway.observability.metrics import Metrics
from gateway.observability.tracing import FEEDBACK_SCORE, RequestTracer
from gateway.pipeline.target_step import in_target
from gateway.pipeline.verdict import CheckOptions, Verdict, judge_query, refuse
from gateway.sql_check import MODEL_DIALECT, check_sql
from gateway.store import Store
from gateway.store.records import AnswerRow, FeedbackChange, FeedbackRow, Origin, Rating, VerifiedPair, utc_now


@dataclass(frozen=True)
class Receipt:
    feedback: FeedbackRow
    answer: AnswerRow
    verified: VerifiedPair | None
    retired: int


class FeedbackDesk:
    def __init__(self, store: Store, answers: AnswerLog, *, check: CheckOptions, metrics: Metrics,
                 tracer: RequestTracer, redact_comments: bool) -> None:
        self._store = store
        self._answers = answers
        self._check = check
        self._metrics = metrics
        self._tracer = tracer
        self._redact_comments = redact_comments

    async def rate(self, *, answer_id: str, rating: Rating, corrected_sql: str | None, comment: str | None,
                   key_name: str | None) -> Receipt:
        await self._answers.flush()  # an answer given a moment ago may still be queued
        answer = await self._store.answer(answer_id)
        if answer is None:
            raise NotFound(f"No answer has the id '{answer_id[:80]}' (answers are kept for a limited time).",
                           param="id", code="not_found")
        feedback = FeedbackRow(id="fb_" + uuid.uuid4().hex, answer_id=answer.id, created_at=utc_now(),
                               key_name=key_name, rating=rating, corrected_sql=corrected_sql, comment=comment)
        pair: VerifiedPair | None = None
        retire = rating == "down"
        if corrected_sql is not None:
            pair = self._pair(answer, await self.checked_correction(corrected_sql, answer), "correction", feedback)
            retire = True
        elif rating == "up" and answer.source != "verified" and not await self._store.has_live_pair_from(answer.id):
            pair = self._pair(answer, answer.source_query, "rating", feedback)
        change = FeedbackChange(feedback, add=pair, retire_from_answer=answer.id if retire else None,
                                retire_pair=answer.verified_id if retire else None)
        outcome = await self._store.apply_feedback(change)
        self._metrics.feedback(rating)
        self._tracer.score(trace_id=answer.trace_id, name=FEEDBACK_SCORE, value=1.0 if rating == "up" else 0.0,
                           comment=self._score_comment(feedback))
        return Receipt(feedback=feedback, answer=answer, verified=outcome.added, retired=outcome.retired)

    def _score_comment(self, feedback: FeedbackRow) -> str | None:
        corrected = "corrected" if feedback.corrected_sql is not None else None
        if self._redact_comments or not feedback.comment:
            return corrected  # the comment may name what the question named
        return f"{feedback.comment} ({corrected})" if corrected else feedback.comment

    @staticmethod
    def _pair(answer: AnswerRow, source_query: str, origin: Origin, feedback: FeedbackRow) -> VerifiedPair:
        return VerifiedPair(id=new_pair_id(), fingerprint=answer.fingerprint,
                            question_key=question_shape(answer.question).key, question=answer.question,
                            schema=answer.schema, source_query=source_query, origin=origin, answer_id=answer.id,
                            feedback_id=feedback.id, verified_by=feedback.key_name, verified_at=feedback.created_at)

    async def checked_correction(self, sql: str, answer: AnswerRow) -> str:
        """The correction (written in the answer's dialect) through the same check as a model's answer, in that
        dialect and in SQLite (and the check database, where one is configured); the SQLite text the memory
        keeps. Raises the check's 422 when it fails."""
        verdict = await in_target(self._judge(sql, answer), schema=answer.schema, dialect=answer.dialect,
                                  options=self._check)
        if verdict.error_code is not None:
            problems = [str(p.get("message")) for p in verdict.check.get("problems", [])]
            reason = "; ".join(dict.fromkeys(problems)) or "it did not pass the SQL check"
            raise SqlRejected(f"The corrected SQL was rejected: {reason}", code=verdict.error_code,
                              param="corrected_sql", extra={"check": verdict.check})
        return verdict.source_query

    def _judge(self, sql: str, answer: AnswerRow) -> Verdict:
        if answer.dialect == MODEL_DIALECT:
            return judge_query(sql, "stop", schema=answer.schema, dialect=MODEL_DIALECT, options=self._check)
        first = check_sql(sql, schema=answer.schema, dialect=answer.dialect, policy=self._check.policy,
                          grounding=self._check.grounding)
        as_written = Verdict(sql, sql, {**first.as_dict(), "query": sql, "dialect": answer.dialect,
                                        "source_dialect": answer.dialect})
        if first.error_code is not None:
            return as_written
        try:
            in_sqlite = sqlglot.transpile(sql, read=answer.dialect, write=MODEL_DIALECT)[0]
        except (SqlglotError, IndexError, RecursionError, ValueError):
            return refuse(as_written, code="untranslatable_sql", problem="untranslatable",
                          message=f"it could not be read back from {answer.dialect} into SQLite")
        return judge_query(in_sqlite, "stop", schema=answer.schema, dialect=answer.dialect, options=self._check)
