"""The plain routes: /v1/sql (question + schema -> SQL and its check) and the seed's /generate."""

from __future__ import annotations

import time

from fastapi import APIRouter, Request

from gateway.answer import SqlAnswer, SqlRequest
from gateway.deps import Awake, Record, State
from gateway.disconnect import until_disconnect
from gateway.errors import ERROR_RESPONSES
from gateway.pipeline import AnswerPipeline
from gateway.request_record import RequestRecord
from gateway.routes.protocol import (
    GenerateRequestBody,
    GenerateResponseBody,
    SqlRequestBody,
    SqlResponseBody,
)

router = APIRouter(tags=["sql"])


@router.post("/v1/sql", response_model=SqlResponseBody, responses=ERROR_RESPONSES,
             dependencies=[Awake])
async def generate_sql(body: SqlRequestBody, request: Request, state: State, record: Record) -> SqlResponseBody:
    """Question + CREATE TABLE statements in; one checked SQL query out."""
    started = time.perf_counter()
    sql_request = state.pipeline.prepare(body.question, body.sql_schema, body.dialect, question_param="question",
                                         tables=body.tables)
    answer = await _valid_answer(state.pipeline, request, sql_request, record)
    return SqlResponseBody.from_answer(answer, model=state.settings.model_id,
                                       latency_s=time.perf_counter() - started)


@router.post("/generate", response_model=GenerateResponseBody, responses=ERROR_RESPONSES,
             dependencies=[Awake])
async def generate(body: GenerateRequestBody, request: Request, state: State, record: Record
                   ) -> GenerateResponseBody:
    """The seed deployment's route, kept for its callers: {question, context} -> {sql}."""
    sql_request = state.pipeline.prepare(body.question, body.context, None, question_param="question",
                                         schema_param="context")
    answer = await _valid_answer(state.pipeline, request, sql_request, record)
    return GenerateResponseBody(sql=answer.query, finish_reason=answer.finish_reason or "stop")


async def _valid_answer(pipeline: AnswerPipeline, request: Request, sql_request: SqlRequest, record: RequestRecord
                        ) -> SqlAnswer:
    answer = await until_disconnect(request, pipeline.answer(sql_request, record))
    rejected = AnswerPipeline.refusal(answer)
    if rejected is not None:
        raise rejected
    return answer
