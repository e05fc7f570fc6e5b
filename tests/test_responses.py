"""`POST /v1/responses` through the real `openai` SDK (`client.responses.create` and `client.responses.stream`)
against a real gateway under uvicorn on 127.0.0.1; the fake upstream stands in for the model."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import openai
import orjson
import pytest

from gateway.app import create_app
from tests import faults
from tests.conftest import API_KEY, make_settings
from tests.servers import FakeUpstream, fake_upstream, serve_in_thread
from tests.test_routes_policy import metric_value

SCHEMA = "CREATE TABLE singer (Singer_ID int, Name text, Country text, Song_Name text)"
QUESTION = "How many singers do we have?"
MODEL = "qwen2.5-1.5b-sql"
EVENTS = ["response.created", "response.in_progress", "response.output_item.added", "response.content_part.added",
          "response.output_text.delta", "response.output_text.done", "response.content_part.done",
          "response.output_item.done", "response.completed"]


@contextmanager
def sdk_against_gateway(*upstream_faults: faults.Fault, **settings: Any
                        ) -> Iterator[tuple[openai.OpenAI, FakeUpstream, str]]:
    with fake_upstream(*upstream_faults) as upstream:
        app = create_app(make_settings(upstream_url=upstream.base_url, **settings))
        with serve_in_thread(app) as server, openai.OpenAI(base_url=f"{server.base_url}/v1", api_key=API_KEY,
                                                           max_retries=0) as client:
            yield client, upstream, server.base_url


def sent_prompts(upstream: FakeUpstream) -> list[str]:
    return [orjson.loads(request)["prompt"] for request in upstream.requests]


def test_create_and_stream_deliver_the_same_checked_query_with_its_check() -> None:
    split = faults.stream(faults.sse_frames(["SELECT count(*) ", "FROM singer"]))
    with sdk_against_gateway(faults.ok("SELECT count(*) FROM singer"), split, cache_enabled=False) as (
            client, upstream, _):
        plain = client.responses.create(model=MODEL, input=QUESTION, extra_body={"schema": SCHEMA})
        with client.responses.stream(model=MODEL, input=QUESTION, extra_body={"schema": SCHEMA}) as stream:
            events = list(stream)
            final = stream.get_final_response()
        assert len(upstream.requests) == 2 and orjson.loads(upstream.requests[1])["stream"] is True
    assert plain.status == "completed" and plain.output_text == "SELECT count(*) FROM singer"
    assert plain.id.startswith("resp_") and plain.model == MODEL
    assert plain.usage is not None and (plain.usage.input_tokens, plain.usage.output_tokens) == (90, 7)
    check = plain.model_extra["sql"]  # type: ignore[index]
    assert check["valid"] is True and check["compiled"] is True and check["query"] == plain.output_text
    # The stream is a way of delivering the plain answer: its one delta is the whole checked text.
    assert [event.type for event in events] == EVENTS
    deltas = [event.delta for event in events if event.type == "response.output_text.delta"]
    assert deltas == [plain.output_text]
    assert final.output_text == plain.output_text and final.status == "completed"
    assert final.model_extra["sql"] == check  # type: ignore[index]
    assert [event.sequence_number for event in events] == list(range(len(EVENTS)))


def test_messages_and_instructions_carry_the_question_and_the_schema() -> None:
    with sdk_against_gateway(faults.ok("SELECT count(*) FROM singer")) as (client, upstream, _):
        response = client.responses.create(
            model=MODEL, instructions=f"Answer about this database:\n{SCHEMA}",
            input=[{"role": "user", "content": "Some earlier question?"},
                   {"role": "assistant", "content": "SELECT 1"},
                   {"type": "message", "role": "user", "content": [{"type": "input_text", "text": QUESTION}]}])
        prompt = sent_prompts(upstream)[0]
    assert response.output_text == "SELECT count(*) FROM singer"
    assert f"{SCHEMA}\n\nWrite a SQL query to answer: {QUESTION}" in prompt
    assert "Some earlier question" not in prompt


def test_a_refusal_is_a_422_in_the_openai_shape_and_in_a_stream_the_error_event_the_sdk_raises() -> None:
    refused = faults.stream(faults.sse_frames(["DELETE FROM ", "singer"]))
    with sdk_against_gateway(faults.ok("DELETE FROM singer"), refused, cache_enabled=False) as (client, _, url):
        with pytest.raises(openai.UnprocessableEntityError) as plain:
            client.responses.create(model=MODEL, input=QUESTION, extra_body={"schema": SCHEMA})
        seen: list[str] = []
        with pytest.raises(openai.APIError) as streamed, client.responses.stream(
                model=MODEL, input=QUESTION, extra_body={"schema": SCHEMA}) as stream:
            seen.extend(event.type for event in stream)
        metrics = httpx.get(f"{url}/metrics").text
    assert plain.value.code == "unsafe_sql" and plain.value.status_code == 422
    assert plain.value.body["check"]["statement_type"] == "delete"  # type: ignore[index]
    assert streamed.value.code == "unsafe_sql"
    assert streamed.value.body["type"] == "sql_check_error"  # type: ignore[index]
    # Nothing that failed the check left the gateway: no output item, no text.
    assert seen == ["response.created", "response.in_progress"]
    assert metric_value(metrics, "sqlgate_requests_total", route="responses", status="422") == 2
    assert metric_value(metrics, "sqlgate_sql_refusals_total", code="unsafe_sql") == 2


def test_the_raw_stream_is_server_sent_events_named_after_their_type() -> None:
    with fake_upstream(faults.stream(faults.sse_frames(["DROP TABLE singer"]))) as upstream:
        app = create_app(make_settings(upstream_url=upstream.base_url))
        with serve_in_thread(app) as server:
            raw = httpx.post(f"{server.base_url}/v1/responses", headers={"authorization": f"Bearer {API_KEY}"},
                             json={"input": QUESTION, "schema": SCHEMA, "stream": True})
    assert raw.status_code == 200 and raw.headers["content-type"].startswith("text/event-stream")
    frames = [frame.split("\n") for frame in raw.text.strip().split("\n\n")]
    assert [lines[0] for lines in frames] == ["event: response.created", "event: response.in_progress",
                                              "event: error"]
    error = orjson.loads(frames[-1][1].removeprefix("data: "))
    assert (error["type"], error["code"], error["sequence_number"]) == ("error", "unsafe_sql", 2)
    assert error["error"]["code"] == "unsafe_sql" and error["message"] == error["error"]["message"]
    assert "DROP TABLE" not in raw.text.replace(error["error"]["check"]["query"], "")


@pytest.mark.parametrize(
    ("request_fields", "error", "code", "param"),
    [
        ({"input": QUESTION}, openai.UnprocessableEntityError, "missing_schema", "schema"),
        ({"input": "x" * 501, "extra_body": {"schema": SCHEMA}}, openai.UnprocessableEntityError,
         "question_too_long", "input"),
        ({"input": [{"role": "system", "content": SCHEMA}]}, openai.UnprocessableEntityError, "empty_question",
         "input"),
        ({"input": QUESTION, "extra_body": {"schema": SCHEMA, "dialect": "klingon"}}, openai.BadRequestError,
         "unsupported_dialect", "dialect"),
        ({"input": [{"role": "wizard", "content": QUESTION}], "extra_body": {"schema": SCHEMA}},
         openai.BadRequestError, "invalid_request", None),
        ({"input": QUESTION, "model": "gpt-5", "extra_body": {"schema": SCHEMA}}, openai.NotFoundError,
         "model_not_found", "model"),
    ],
)
def test_bad_input_is_a_clear_openai_error_before_the_model(request_fields: dict[str, Any],
                                                            error: type[openai.APIStatusError], code: str,
                                                            param: str | None) -> None:
    fields = {"model": MODEL, **request_fields}
    with sdk_against_gateway(faults.ok()) as (client, upstream, _):
        with pytest.raises(error) as raised:
            client.responses.create(**fields)
        assert upstream.requests == []
    assert raised.value.code == code
    if param is not None:
        assert raised.value.param == param


def test_a_missing_input_and_a_bad_key_are_refused() -> None:
    with fake_upstream(faults.ok()) as upstream:
        app = create_app(make_settings(upstream_url=upstream.base_url))
        with serve_in_thread(app) as server:
            missing = httpx.post(f"{server.base_url}/v1/responses", json={"schema": SCHEMA},
                                 headers={"authorization": f"Bearer {API_KEY}"})
            with openai.OpenAI(base_url=f"{server.base_url}/v1", api_key="sk-wrong-key-0000000000",
                               max_retries=0) as client, pytest.raises(openai.AuthenticationError) as refused:
                client.responses.create(model=MODEL, input=QUESTION, extra_body={"schema": SCHEMA})
        assert upstream.requests == []
    assert missing.status_code == 400 and missing.json()["error"]["param"] == "input"
    assert refused.value.code == "invalid_api_key"
