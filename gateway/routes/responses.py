"""`POST /v1/responses`: the OpenAI Responses API over the one answer pipeline, plain or streamed."""

from __future__ import annotations

import time
import uuid

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, StreamingResponse
from starlette.background import BackgroundTask

from gateway.deps import Awake, Record, State
from gateway.disconnect import until_disconnect
from gateway.pipeline import AnswerPipeline
from gateway.routes.openai import GENERATION_RESPONSES, check_model
from gateway.routes.questions import question_and_schema
from gateway.routes.responses_shape import ResponseObject, ResponseShaper, ResponsesRequest, response_events

router = APIRouter(prefix="/v1", tags=["openai"])


@router.post("/responses", response_model=ResponseObject, responses=GENERATION_RESPONSES, dependencies=[Awake])
async def responses(body: ResponsesRequest, request: Request, state: State, record: Record
                    ) -> JSONResponse | StreamingResponse:
    """Text to SQL through the Responses API: `input` is the question, `output_text` the checked query, `sql` its
    check; with `stream`, the Responses event sequence (the text held back until it is checked)."""
    check_model(state, body)
    question, schema = question_and_schema(body.messages(), body.schema_text(), param="input")
    pipeline = state.pipeline
    sql_request = pipeline.prepare(question, schema, body.dialect, question_param="input")
    response_id = "resp_" + uuid.uuid4().hex
    record.answer_id = response_id  # what feedback names the answer by (POST /v1/feedback)
    shaper = ResponseShaper(response_id, "msg_" + uuid.uuid4().hex, int(time.time()), state.settings.model_id)
    if body.stream:
        pending = await pipeline.begin(sql_request, record, stream=True)
        return StreamingResponse(
            response_events(pending, shaper, record),
            media_type="text/event-stream",
            headers={"cache-control": "no-cache", "x-accel-buffering": "no"},
            # Also when the body never starts (the client left first): a flight it leads must be handed back.
            background=BackgroundTask(pending.aclose),
        )
    answer = await until_disconnect(request, pipeline.answer(sql_request, record))
    rejected = AnswerPipeline.refusal(answer)
    if rejected is not None:
        raise rejected
    return JSONResponse(shaper.response(answer))
