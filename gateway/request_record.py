"""What one request did, filled in along its path and read once at the end (metrics, log line, trace)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from gateway.answer import SqlAnswer


@dataclass
class RequestRecord:
    request_id: str
    route: str
    method: str
    key_name: str | None = None
    answer_id: str | None = None  # the response's `id`: feedback names the answer by it, its trace id derives from it
    status: int = 0
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    cache: str | None = None
    sql_outcome: str | None = None
    error_code: str | None = None
    ttft_s: float | None = None
    stream_error_status: int | None = None  # an in-band error after a 200 started streaming
    event_stream: bool = False  # the response started as text/event-stream
    response_complete: bool = False  # its last body message was sent
    answer: SqlAnswer | None = None
    trace: Any = None  # the tracer's RequestTrace; typed loosely so this module stays a leaf
