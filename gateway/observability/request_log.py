"""One structured JSON line per request on the `sqlgate.request` logger, and the JSON formatter that writes it.

The line names the API key by its configured name only; the key itself, the question and the schema never appear.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

import orjson

from gateway.request_record import RequestRecord

REQUEST_LOGGER = "sqlgate.request"
FIELDS_ATTRIBUTE = "sqlgate_fields"  # where a LogRecord carries the structured fields


def request_fields(record: RequestRecord, elapsed_s: float) -> dict[str, Any]:
    """The structured fields of one request's log line."""
    answer = record.answer
    return {
        "request_id": record.request_id,
        "key_name": record.key_name,
        "route": record.route,
        "method": record.method,
        "status": record.status,
        "stream_error_status": record.stream_error_status,
        "latency_ms": round(elapsed_s * 1000, 1),
        # The share of the latency that was vLLM's (None when nothing went upstream: cache hit, refused early).
        "upstream_ms": _ms(answer.upstream_latency_s) if answer is not None and not answer.cached else None,
        "ttft_ms": _ms(record.ttft_s) if record.ttft_s is not None else None,
        "prompt_tokens": record.prompt_tokens,
        "completion_tokens": record.completion_tokens,
        "cache": record.cache or "none",
        "sql_outcome": record.sql_outcome,
        "error_code": record.error_code,
        # The candidate step, when the greedy answer failed: asked, passing, votes, won, timed_out, latency_ms.
        "repair": answer.repair.as_dict() if answer is not None and answer.repair is not None else None,
        # The vote's confidence and the model that answered (the escalation model when it did).
        "agreement": answer.agreement["ratio"] if answer is not None and answer.agreement else None,
        "answered_by": answer.answered_by if answer is not None else None,
    }


def _ms(seconds: float) -> float:
    return round(seconds * 1000, 1)


def request_message(record: RequestRecord, elapsed_s: float) -> str:
    """A short human sentence, like the seed server's `Generated 9 tokens in 312 ms`."""
    ms = round(elapsed_s * 1000)
    if record.error_code is not None:
        status = record.stream_error_status or record.status
        return f"Failed with {status} {record.error_code} in {ms} ms"
    if record.completion_tokens is not None:
        if record.cache == "hit":
            return f"Served {record.completion_tokens} cached tokens in {ms} ms"
        return f"Generated {record.completion_tokens} tokens in {ms} ms"
    return f"Answered {record.status} in {ms} ms"


class RequestLogger:
    """Writes the per-request line; the level follows the outcome so that 5xx stand out."""

    def __init__(self, logger: logging.Logger | None = None) -> None:
        self._logger = logger or logging.getLogger(REQUEST_LOGGER)

    def emit(self, record: RequestRecord, elapsed_s: float) -> None:
        status = record.stream_error_status or record.status
        level = logging.ERROR if status >= 500 or status == 0 else logging.INFO
        if not self._logger.isEnabledFor(level):
            return
        self._logger.log(level, request_message(record, elapsed_s),
                         extra={FIELDS_ATTRIBUTE: request_fields(record, elapsed_s)})


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, then any structured request fields."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        fields = getattr(record, FIELDS_ATTRIBUTE, None)
        if isinstance(fields, dict):
            line.update(fields)
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return orjson.dumps(line, default=str).decode()


def logging_config(level: str = "INFO", *, json_lines: bool = True) -> dict[str, Any]:
    """A `logging.config.dictConfig` dict (also valid as uvicorn's `log_config`): everything to stderr."""
    formatter: dict[str, Any] = (
        {"()": f"{__name__}.JsonFormatter"} if json_lines
        else {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}
    )
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"default": formatter},
        "handlers": {"stderr": {"class": "logging.StreamHandler", "formatter": "default",
                                "stream": "ext://sys.stderr"}},
        "root": {"handlers": ["stderr"], "level": level},
        "loggers": {
            # propagate: uvicorn's own config (applied first when it is not given this one) turns it off, and a
            # reconfigured logger keeps that unless told.
            "uvicorn": {"level": level, "propagate": True},
            "uvicorn.error": {"level": level, "propagate": True},
            # The gateway's request line replaces uvicorn's access log.
            "uvicorn.access": {"level": "WARNING", "propagate": True},
        },
    }
