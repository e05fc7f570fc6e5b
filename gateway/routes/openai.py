"""The OpenAI-compatible routes: /v1/completions (the core), /v1/chat/completions, /v1/models."""

from __future__ import annotations

import time
import uuid
from typing import Any, Literal

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, StreamingResponse

from gateway.deps import Awake, Record, State
from gateway.errors import ERROR_RESPONSES, CapExceeded, ErrorResponse, NotFound
from gateway.routes.protocol import (
    ChatRequest,
    ChatResponse,
    CompletionRequest,
    CompletionResponse,
    ModelCard,
    ModelList,
    OpenAIRequest,
)
from gateway.routes.questions import question_and_schema
from gateway.routes.streaming import ChunkShaper, checked_answer, event_stream, sse_body

router = APIRouter(prefix="/v1", tags=["openai"])

# Both generation routes answer JSON, or server-sent events when `stream` is true, and 404 for an unknown model.
GENERATION_RESPONSES: dict[int | str, dict[str, Any]] = {
    **ERROR_RESPONSES,
    # Before OpenAPI 3.2, an event-stream schema describes one event: its `data` is a JSON chunk (or an in-band
    # error) and the last one is `[DONE]`.
    200: {"content": {"text/event-stream": {"schema": {
        "type": "object", "required": ["data"],
        "properties": {"data": {"type": "string", "description": "a JSON chunk, an error object, or [DONE]"}}}}},
          "description": "The answer, or its chunks when `stream` is true"},
    404: {"model": ErrorResponse, "description": "Unknown model"},
}


def check_model(state: State, body: OpenAIRequest) -> None:
    """404 `model_not_found` unless `model` is absent or names the served model."""
    known = {state.settings.model_id, state.settings.upstream_model}
    if body.model is not None and body.model not in known:
        raise NotFound(
            f"The model '{body.model[:100]}' does not exist. This gateway serves '{state.settings.model_id}'.",
            param="model",
            code="model_not_found",
        )


async def _respond(
    state: State, record: Record, request: Request, body: OpenAIRequest, *, question: str, schema: str,
    question_param: str, kind: Literal["completion", "chat"],
) -> JSONResponse | StreamingResponse:
    check_model(state, body)
    pipeline = state.pipeline
    sql_request = pipeline.prepare(question, schema, body.dialect, question_param=question_param,
                                   tables=body.tables)
    response_id = ("cmpl-" if kind == "completion" else "chatcmpl-") + uuid.uuid4().hex
    created = int(time.time())
    model = state.settings.model_id
    if body.stream:
        pending = await pipeline.begin(sql_request, record, stream=True)
        include_usage = bool(body.stream_options and body.stream_options.include_usage)
        shaper = ChunkShaper(kind, response_id, created, model)
        return event_stream(sse_body(pending, shaper, include_usage=include_usage, record=record), pending)
    answer = await checked_answer(request, pipeline, sql_request, record)
    finish_reason = answer.finish_reason or "stop"
    if kind == "completion":
        choice: dict[str, object] = {"index": 0, "text": answer.query, "logprobs": None,
                                     "finish_reason": finish_reason}
        obj = "text_completion"
    else:
        choice = {"index": 0, "message": {"role": "assistant", "content": answer.query},
                  "logprobs": None, "finish_reason": finish_reason}
        obj = "chat.completion"
    return JSONResponse({"id": response_id, "object": obj, "created": created, "model": model,
                         "choices": [choice], "usage": answer.usage, "sql": answer.check})


@router.post("/completions", response_model=CompletionResponse, responses=GENERATION_RESPONSES,
             dependencies=[Awake])
async def completions(body: CompletionRequest, request: Request, state: State, record: Record
                      ) -> JSONResponse | StreamingResponse:
    """Text to SQL: `prompt` is the question, `schema` (or `context`) the CREATE TABLE statements."""
    prompt = body.prompt
    if isinstance(prompt, list):
        if len(prompt) != 1:
            raise CapExceeded("Send exactly one question in 'prompt'.", param="prompt", code="invalid_prompt")
        prompt = prompt[0]
    return await _respond(state, record, request, body, question=prompt, schema=body.schema_text() or "",
                          question_param="prompt", kind="completion")


def chat_question_and_schema(body: ChatRequest) -> tuple[str, str]:
    """The last user message is the question; the schema is the `schema` field or CREATE TABLEs in the chat."""
    return question_and_schema([(message.role, message.text()) for message in body.messages], body.schema_text(),
                               param="messages")


@router.post("/chat/completions", response_model=ChatResponse, responses=GENERATION_RESPONSES,
             dependencies=[Awake])
async def chat_completions(body: ChatRequest, request: Request, state: State, record: Record
                           ) -> JSONResponse | StreamingResponse:
    """Text to SQL through the chat protocol; same guarantees as /v1/completions."""
    question, schema = chat_question_and_schema(body)
    return await _respond(state, record, request, body, question=question, schema=schema,
                          question_param="messages", kind="chat")


@router.get("/models", response_model=ModelList, responses={401: ERROR_RESPONSES[401]})
async def models(state: State) -> ModelList:
    return ModelList(data=[ModelCard(id=state.settings.model_id, created=state.started_at)])
