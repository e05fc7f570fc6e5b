"""`POST /v1/responses`: the OpenAI Responses API over the one answer pipeline, plain or streamed."""

from __future__ import annotations

import time
import uuid

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, StreamingResponse

from gateway.deps import Awake, Record, State
from gateway.routes.openai import GENERATION_RESPONSES, check_model
from gateway.routes.questions import question_and_schema
from gateway.routes.responses_shape import ResponseObject, ResponseShaper, ResponsesRequest, response_events
from gateway.routes.streaming import checked_answer, event_stream

router = APIRouter(prefix="/v1", tags=["openai"])


@router.post("/responses", response_model=ResponseObject, responses=GENERATION_RESPONSES, dependencies=[Awake])
async def responses(body: ResponsesRequest, request: Request, state: State, record: Record
                    ) -> JSONResponse | StreamingResponse:
    """Text to SQL through the Responses API: `input` is the question, `output_text` the checked query, `sql` its
    check; with `stream`, the Responses event sequence (the text held back until it is checked)."""
    check_model(state, body)
    question, schema = question_and_schema(body.messages(), body.schema_text(), param="input")
    pipeline = state.pipeline
    sql_request = pipeline.prepare(question, schema, body.dialect, question_param="input", tables=body.tables)
    shaper = ResponseShaper("resp_" + uuid.uuid4().hex, "msg_" + uuid.uuid4().hex, int(time.time()),
                            state.settings.model_id)
    if body.stream:
        pending = await pipeline.begin(sql_request, record, stream=True)
        return event_stream(response_events(pending, shaper, record), pending)
    answer = await checked_answer(request, pipeline, sql_request, record)
    return JSONResponse(shaper.response(answer))
