"""Server-sent events for both OpenAI routes. The answer is held back until it is checked: the stream carries the
same text as the plain answer (one delta), then exactly one terminal frame (the final chunk, or an in-band error
when the check refused the answer or the upstream failed after the response started) before `data: [DONE]`."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from typing import Any, Literal

import orjson
from fastapi import Request
from fastapi.responses import StreamingResponse
from starlette.background import BackgroundTask

from gateway.answer import SqlAnswer, SqlRequest
from gateway.disconnect import until_disconnect
from gateway.errors import GatewayError
from gateway.pipeline import AnswerPipeline, PendingAnswer
from gateway.request_record import RequestRecord

logger = logging.getLogger("sqlgate.streaming")

DONE = b"data: [DONE]\n\n"


def sse(payload: dict[str, Any]) -> bytes:
    return b"data: " + orjson.dumps(payload) + b"\n\n"


def event_stream(body: AsyncIterator[bytes], pending: PendingAnswer) -> StreamingResponse:
    """The streamed answer of any route: server-sent events, never cached by a proxy or buffered by nginx."""
    return StreamingResponse(
        body,
        media_type="text/event-stream",
        headers={"cache-control": "no-cache", "x-accel-buffering": "no"},
        # Also when the body never starts (the client left first): a flight it leads must be handed back.
        background=BackgroundTask(pending.aclose),
    )


async def checked_answer(request: Request, pipeline: AnswerPipeline, sql_request: SqlRequest,
                         record: RequestRecord) -> SqlAnswer:
    """The plain answer of any route, or its typed refusal raised (the one error shape does the rest)."""
    answer = await until_disconnect(request, pipeline.answer(sql_request, record))
    rejected = AnswerPipeline.refusal(answer)
    if rejected is not None:
        raise rejected
    return answer


class ChunkShaper:
    """Formats chunks as `text_completion` (legacy completions) or `chat.completion.chunk`."""

    def __init__(self, kind: Literal["completion", "chat"], response_id: str, created: int, model: str) -> None:
        self.kind = kind
        self.base: dict[str, Any] = {
            "id": response_id,
            "object": "text_completion" if kind == "completion" else "chat.completion.chunk",
            "created": created,
            "model": model,
        }

    def opening(self) -> dict[str, Any] | None:
        if self.kind == "chat":
            return {**self.base, "choices": [{"index": 0, "delta": {"role": "assistant", "content": ""},
                                              "logprobs": None, "finish_reason": None}]}
        return None

    def delta(self, text: str) -> dict[str, Any]:
        if self.kind == "chat":
            choice: dict[str, Any] = {"index": 0, "delta": {"content": text}, "logprobs": None, "finish_reason": None}
        else:
            choice = {"index": 0, "text": text, "logprobs": None, "finish_reason": None}
        return {**self.base, "choices": [choice]}

    def final(self, answer: SqlAnswer) -> dict[str, Any]:
        if self.kind == "chat":
            choice: dict[str, Any] = {"index": 0, "delta": {}, "logprobs": None,
                                      "finish_reason": answer.finish_reason or "stop"}
        else:
            choice = {"index": 0, "text": "", "logprobs": None, "finish_reason": answer.finish_reason or "stop"}
        return {**self.base, "choices": [choice], "sql": answer.check}

    def usage(self, answer: SqlAnswer) -> dict[str, Any]:
        return {**self.base, "choices": [], "usage": answer.usage}


async def sse_body(pending: PendingAnswer, shaper: ChunkShaper, *, include_usage: bool, record: RequestRecord
                   ) -> AsyncIterator[bytes]:
    """The whole SSE body. Cancellation (client gone) closes the upstream stream, which aborts vLLM's request."""
    try:
        opening = shaper.opening()
        if opening is not None:
            yield sse(opening)
        answer = await pending.result()
        rejected = AnswerPipeline.refusal(answer)
        if rejected is not None:
            record.error_code = rejected.code
            record.stream_error_status = rejected.status_code
            yield sse(rejected.body())
        else:
            yield sse(shaper.delta(answer.query))
            yield sse(shaper.final(answer))
            if include_usage:
                yield sse(shaper.usage(answer))
        yield DONE
    except GatewayError as exc:
        record.error_code = exc.code
        record.stream_error_status = exc.status_code
        yield sse(exc.body())
        yield DONE
    except Exception:
        logger.exception("stream failed")
        error = GatewayError("The server had an error while streaming the response.")
        record.error_code = error.code
        record.stream_error_status = error.status_code
        yield sse(error.body())
        yield DONE
    finally:
        await pending.aclose()
