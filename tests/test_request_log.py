"""The per-request JSON log line: its fields, its human message, its level, and what it must never carry."""

from __future__ import annotations

import io
import json
import logging
import logging.config
from collections.abc import Iterator
from typing import Any

import pytest

from gateway.answer import SqlAnswer
from gateway.observability.request_log import (
    REQUEST_LOGGER,
    JsonFormatter,
    RequestLogger,
    logging_config,
)
from gateway.request_record import RequestRecord

FIELDS = {"request_id", "key_name", "route", "method", "status", "stream_error_status", "latency_ms",
          "upstream_ms", "ttft_ms", "prompt_tokens", "completion_tokens", "cache", "sql_outcome", "error_code",
          "repair", "agreement", "answered_by"}


@pytest.fixture
def captured() -> Iterator[tuple[logging.Logger, io.StringIO]]:
    """A private logger with the JSON formatter on a string buffer."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    log = logging.getLogger(f"{REQUEST_LOGGER}.test")
    log.handlers = [handler]
    log.setLevel(logging.INFO)
    log.propagate = False
    yield log, stream
    log.handlers = []


def lines(stream: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def generated_record() -> RequestRecord:
    return RequestRecord(request_id="0f3c", route="completions", method="POST", key_name="analysts", status=200,
                         prompt_tokens=57, completion_tokens=9, cache="miss", sql_outcome="valid")


def test_a_generated_answer_is_one_json_line_with_every_field(captured: tuple[logging.Logger, io.StringIO]) -> None:
    log, stream = captured
    RequestLogger(log).emit(generated_record(), 0.3124)
    [line] = lines(stream)
    assert set(line) >= FIELDS
    assert set(line) - FIELDS == {"ts", "level", "logger", "message"}
    assert line["message"] == "Generated 9 tokens in 312 ms"
    assert line["level"] == "INFO" and line["logger"] == log.name
    assert line["latency_ms"] == 312.4
    assert (line["request_id"], line["key_name"], line["route"], line["method"]) == ("0f3c", "analysts",
                                                                                     "completions", "POST")
    assert (line["prompt_tokens"], line["completion_tokens"], line["cache"]) == (57, 9, "miss")
    assert line["ts"].endswith("+00:00")


def test_the_line_splits_the_latency_into_vllm_time_and_first_token(
        captured: tuple[logging.Logger, io.StringIO]) -> None:
    log, stream = captured
    generated = generated_record()
    generated.answer = SqlAnswer(query="SELECT 1", source_query="SELECT 1", raw_text="SELECT 1", finish_reason="stop",
                              prompt_tokens=57,
                                 completion_tokens=9, check={}, upstream_latency_s=0.2504, ttft_s=0.0411)
    generated.ttft_s = 0.0411
    served = generated_record()
    served.answer = SqlAnswer(query="SELECT 1", source_query="SELECT 1", raw_text="SELECT 1", finish_reason="stop",
                              prompt_tokens=57,
                              completion_tokens=9, check={}, cached=True)
    RequestLogger(log).emit(generated, 0.3124)
    RequestLogger(log).emit(served, 0.0008)
    first, second = lines(stream)
    assert (first["upstream_ms"], first["ttft_ms"]) == (250.4, 41.1)
    assert (second["upstream_ms"], second["ttft_ms"]) == (None, None)  # a cache hit never went upstream


def test_messages_follow_the_outcome(captured: tuple[logging.Logger, io.StringIO]) -> None:
    log, stream = captured
    logger = RequestLogger(log)
    cached = generated_record()
    cached.cache = "hit"
    logger.emit(cached, 0.004)
    logger.emit(RequestRecord(request_id="r2", route="models", method="GET", status=200), 0.002)
    limited = RequestRecord(request_id="r3", route="completions", method="POST", key_name="analysts", status=429,
                            error_code="rate_limit_exceeded")
    logger.emit(limited, 0.001)
    streamed = generated_record()
    streamed.error_code, streamed.stream_error_status = "upstream_error", 502
    logger.emit(streamed, 1.5)
    hit, models, rate, stream_error = lines(stream)
    assert hit["message"] == "Served 9 cached tokens in 4 ms" and hit["cache"] == "hit"
    assert models["message"] == "Answered 200 in 2 ms" and models["cache"] == "none"
    assert rate["message"] == "Failed with 429 rate_limit_exceeded in 1 ms" and rate["level"] == "INFO"
    assert stream_error["message"] == "Failed with 502 upstream_error in 1500 ms"
    assert stream_error["level"] == "ERROR" and stream_error["status"] == 200


def test_the_line_names_the_key_never_the_key_or_the_question(captured: tuple[logging.Logger, io.StringIO]
                                                              ) -> None:
    log, stream = captured
    record = generated_record()
    # The answer carries the question's values and whatever the model echoed; none of it belongs in the line.
    sql = "SELECT 1 FROM t WHERE customer = 'John Smith' AND key = 'sk-live-secret'"
    record.answer = SqlAnswer(query=sql, source_query=sql, raw_text=sql, finish_reason="stop", prompt_tokens=5,
                              completion_tokens=9, check={"query": sql})
    RequestLogger(log).emit(record, 0.1)
    text = stream.getvalue()
    assert "analysts" in text
    assert "John Smith" not in text and "sk-live-secret" not in text


def test_other_log_records_keep_their_exception(captured: tuple[logging.Logger, io.StringIO]) -> None:
    log, stream = captured
    try:
        raise ValueError("boom")
    except ValueError:
        log.exception("stream failed")
    [line] = lines(stream)
    assert line["message"] == "stream failed" and "ValueError: boom" in line["exception"]
    assert not FIELDS & set(line)


def test_logging_config_writes_json_lines_through_dict_config(monkeypatch: pytest.MonkeyPatch) -> None:
    stream = io.StringIO()
    monkeypatch.setattr("sys.stderr", stream)
    touched = [logging.getLogger(name) for name in ("", "uvicorn", "uvicorn.access")]
    saved = [(log.handlers[:], log.level) for log in touched]
    try:
        logging.config.dictConfig(logging_config("INFO"))
        RequestLogger().emit(generated_record(), 0.05)
    finally:
        for log, (handlers, level) in zip(touched, saved, strict=True):
            log.handlers, log.level = handlers, level
    [line] = lines(stream)
    assert line["logger"] == REQUEST_LOGGER and line["message"] == "Generated 9 tokens in 50 ms"
