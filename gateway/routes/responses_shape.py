"""The OpenAI Responses API's shapes for `POST /v1/responses`: the request, the `response` object, and the event
sequence a stream is made of (the one the `openai` SDK's `responses.stream` accumulates):

    response.created, response.in_progress            (sent at once: no text yet)
    response.output_item.added, response.content_part.added, response.output_text.delta (the whole checked query),
    response.output_text.done, response.content_part.done, response.output_item.done, response.completed

or, when the check refuses the answer (or the upstream fails) after the stream started, one `error` event. It
carries the Responses API's own fields (`code`, `message`, `param`) and the gateway's error object under `error`,
which is what makes the SDK raise `APIError` with the code, as on the other routes' streams.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from typing import Any, Literal

import orjson
from pydantic import BaseModel, ConfigDict, Field

from gateway.answer import SqlAnswer
from gateway.errors import GatewayError
from gateway.pipeline import AnswerPipeline, PendingAnswer
from gateway.request_record import RequestRecord
from gateway.routes.protocol import OpenAIRequest, SqlCheckModel

logger = logging.getLogger("sqlgate.streaming")

# Content part types whose text is what a person wrote (or a previous answer, for an assistant turn).
TEXT_PARTS = frozenset({"input_text", "output_text", "text"})


class InputPart(BaseModel):
    model_config = ConfigDict(extra="allow")
    type: str
    text: str | None = None


class InputMessage(BaseModel):
    """A message item of `input` (`{"role", "content"}`, with or without `"type": "message"`)."""

    model_config = ConfigDict(extra="allow")
    type: Literal["message"] = "message"
    role: Literal["user", "system", "developer", "assistant"]
    content: str | list[InputPart]

    def text(self) -> str:
        if isinstance(self.content, str):
            return self.content
        return "\n".join(part.text or "" for part in self.content if part.type in TEXT_PARTS)


class ResponsesRequest(OpenAIRequest):
    """`input` is the question (a string, or messages whose last user message is); `schema` as on the other
    routes (`extra_body` with the SDK), else CREATE TABLE statements found in `instructions` or the messages."""

    input: str | list[InputMessage] = Field(..., description="The question, or messages ending with it")
    instructions: str | None = Field(None, description="A system message; may hold the CREATE TABLE statements")

    def messages(self) -> list[tuple[str, str]]:
        found = [("system", self.instructions)] if self.instructions else []
        if isinstance(self.input, str):
            return [*found, ("user", self.input)]
        return [*found, *((message.role, message.text()) for message in self.input)]


class ResponseObject(BaseModel):
    """The parts of OpenAI's `response` object this gateway fills in (documented in the OpenAPI spec)."""

    model_config = ConfigDict(extra="allow")
    id: str
    object: Literal["response"] = "response"
    created_at: int
    status: Literal["completed", "in_progress"]
    model: str
    output: list[dict[str, Any]]
    usage: dict[str, Any] | None
    sql: SqlCheckModel


def usage(answer: SqlAnswer) -> dict[str, Any]:
    counts = answer.usage
    return {"input_tokens": counts["prompt_tokens"],
            "input_tokens_details": {"cached_tokens": 0, "cache_write_tokens": 0},
            "output_tokens": counts["completion_tokens"], "output_tokens_details": {"reasoning_tokens": 0},
            "total_tokens": counts["total_tokens"]}


class ResponseShaper:
    """Builds the `response` object and the stream's events for one request."""

    def __init__(self, response_id: str, message_id: str, created: int, model: str) -> None:
        self.response_id = response_id
        self.message_id = message_id
        self.created = created
        self.model = model
        self._sequence = 0

    def response(self, answer: SqlAnswer | None) -> dict[str, Any]:
        """In progress (no answer yet: nothing in `output`), or completed with the checked query and `sql`."""
        body: dict[str, Any] = {
            "id": self.response_id, "object": "response", "created_at": self.created,
            "status": "in_progress" if answer is None else "completed", "model": self.model,
            "output": [] if answer is None else [self.message(answer.query)],
            "usage": None if answer is None else usage(answer),
            "error": None, "incomplete_details": None, "instructions": None, "metadata": {},
            "parallel_tool_calls": False, "tool_choice": "none", "tools": [], "temperature": None, "top_p": None,
            "text": {"format": {"type": "text"}}, "store": False, "background": False,
        }
        if answer is not None:
            body["sql"] = answer.check
        return body

    def message(self, text: str | None) -> dict[str, Any]:
        """The assistant message item: in progress with no content yet (`None`), or completed with `text`."""
        content = [] if text is None else [self.part(text)]
        return {"type": "message", "id": self.message_id, "status": "in_progress" if text is None else "completed",
                "role": "assistant", "content": content}

    @staticmethod
    def part(text: str) -> dict[str, Any]:
        return {"type": "output_text", "text": text, "annotations": [], "logprobs": []}

    def event(self, kind: str, **fields: Any) -> bytes:
        payload = {"type": kind, "sequence_number": self._sequence, **fields}
        self._sequence += 1
        return b"event: " + kind.encode() + b"\ndata: " + orjson.dumps(payload) + b"\n\n"

    def opening(self) -> list[bytes]:
        return [self.event("response.created", response=self.response(None)),
                self.event("response.in_progress", response=self.response(None))]

    def answer_events(self, answer: SqlAnswer) -> list[bytes]:
        """The whole checked query as one delta, framed by the item and part events, then `response.completed`."""
        where = {"item_id": self.message_id, "output_index": 0, "content_index": 0}
        text = answer.query
        return [
            self.event("response.output_item.added", output_index=0, item=self.message(None)),
            self.event("response.content_part.added", **where, part=self.part("")),
            self.event("response.output_text.delta", **where, delta=text, logprobs=[]),
            self.event("response.output_text.done", **where, text=text, logprobs=[]),
            self.event("response.content_part.done", **where, part=self.part(text)),
            self.event("response.output_item.done", output_index=0, item=self.message(text)),
            self.event("response.completed", response=self.response(answer)),
        ]

    def error(self, error: GatewayError) -> bytes:
        inner = error.body()["error"]
        return self.event("error", code=inner["code"], message=inner["message"], param=inner["param"], error=inner)


async def response_events(pending: PendingAnswer, shaper: ResponseShaper, record: RequestRecord
                          ) -> AsyncIterator[bytes]:
    """The whole event stream. Cancellation (client gone) closes the upstream stream, which aborts vLLM's work."""
    try:
        for frame in shaper.opening():
            yield frame
        answer = await pending.result()
        rejected = AnswerPipeline.refusal(answer)
        if rejected is not None:
            raise rejected
        for frame in shaper.answer_events(answer):
            yield frame
    except GatewayError as exc:
        record.error_code = exc.code
        record.stream_error_status = exc.status_code
        yield shaper.error(exc)
    except Exception:
        logger.exception("stream failed")
        error = GatewayError("The server had an error while streaming the response.")
        record.error_code = error.code
        record.stream_error_status = error.status_code
        yield shaper.error(error)
    finally:
        await pending.aclose()
