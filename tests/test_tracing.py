"""Langfuse tracing through the real SDK, exported over OTLP/HTTP to a loopback receiver that decodes every span."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import threading
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

from gateway.answer import SqlAnswer
from gateway.observability.tracing import (
    AGREEMENT_SCORE,
    GENERATION_NAME,
    GUARDRAIL_NAME,
    REDACTED,
    LangfuseTracer,
    NoopTrace,
    NoopTracer,
    RequestTracer,
    build_tracer,
)
from gateway.request_record import RequestRecord
from gateway.sql_check import SqlPolicy, check_sql
from tests.otlp_receiver import OtlpReceiver, ReceivedSpan, otlp_receiver

REPO = Path(__file__).resolve().parents[1]
QUESTION = "Find all orders for customer John Smith"
SCHEMA = "CREATE TABLE orders (id int, customer text, total real)"
GOOD_SQL = "SELECT * FROM orders WHERE customer = 'John Smith'"
MODEL = "qwen2.5-1.5b-sql"
PARAMETERS = {"temperature": 0.0, "top_p": 1.0, "max_tokens": 256, "stop": ["<|im_end|>"]}


@pytest.fixture
def receiver() -> Iterator[OtlpReceiver]:
    with otlp_receiver() as running:
        yield running


SQL_WITH_THE_QUESTIONS_VALUE = "SELECT * FROM orders WHERE customer = 'John Smith'"


def tracer_for(receiver: OtlpReceiver, *, redact: bool = False, **options: Any) -> LangfuseTracer:
    tracer = build_tracer(receiver.public_key, receiver.secret_key, receiver.base_url, redact, **options)
    assert isinstance(tracer, LangfuseTracer)
    return tracer


def answer_for(sql: str, *, cached: bool = False, prompt_tokens: int = 57, completion_tokens: int = 9) -> SqlAnswer:
    check = check_sql(sql, schema=SCHEMA, dialect="sqlite", policy=SqlPolicy("read_only"))
    return SqlAnswer(query=sql, source_query=sql, raw_text=sql, finish_reason="stop", prompt_tokens=prompt_tokens,
                     completion_tokens=completion_tokens, check={**check.as_dict(), "query": sql}, cached=cached,
                     upstream_latency_s=0.0 if cached else 0.004, ttft_s=None if cached else 0.001)


def new_record(request_id: str = "req-0001", key_name: str | None = "analysts") -> RequestRecord:
    return RequestRecord(request_id=request_id, route="completions", method="POST", key_name=key_name)


def traced_request(tracer: RequestTracer, record: RequestRecord, answer: SqlAnswer | None, *,
                   status: int = 200, error_code: str | None = None) -> None:
    """What the app does for one request: open, generate (unless cached), account, finish."""
    trace = tracer.start(record, question=QUESTION, schema=SCHEMA)
    if answer is None or not answer.cached:
        trace.start_generation(model=MODEL, parameters=PARAMETERS)
    record.answer = answer
    record.status = status
    record.error_code = error_code
    record.cache = "hit" if answer is not None and answer.cached else "miss"
    if answer is not None:
        record.prompt_tokens, record.completion_tokens = answer.prompt_tokens, answer.completion_tokens
    tracer.finish(record, 0.012)


def one(spans: list[ReceivedSpan]) -> ReceivedSpan:
    assert len(spans) == 1, [s.name for s in spans]
    return spans[0]


def test_generation_and_guardrail_arrive_with_model_usage_user_and_request_id(receiver: OtlpReceiver) -> None:
    tracer = tracer_for(receiver)
    traced_request(tracer, new_record(), answer_for(GOOD_SQL))
    tracer.shutdown()

    root = one(receiver.by_type("span"))
    generation = one(receiver.by_type("generation"))
    guardrail = one(receiver.by_type("guardrail"))
    assert root.name == "completions" and root.parent_span_id == ""
    for span in (root, generation, guardrail):
        assert span.trace_id == root.trace_id
        assert span.attributes["user.id"] == "analysts"
        assert span.attributes["langfuse.trace.name"] == "completions"
        assert span.json_attribute("langfuse.trace.metadata.request_id") == "req-0001"
    assert generation.parent_span_id == root.span_id and guardrail.parent_span_id == root.span_id

    assert generation.name == GENERATION_NAME
    assert generation.attributes["langfuse.observation.model.name"] == MODEL
    assert generation.json_attribute("langfuse.observation.model.parameters") == PARAMETERS
    assert generation.json_attribute("langfuse.observation.usage_details") == {"input": 57, "output": 9,
                                                                              "total": 66}
    assert generation.json_attribute("langfuse.observation.input") == {"question": QUESTION, "schema": SCHEMA}
    assert generation.attributes["langfuse.observation.output"] == GOOD_SQL
    assert "langfuse.observation.completion_start_time" in generation.attributes
    assert generation.json_attribute("langfuse.observation.metadata.ttft_ms") == pytest.approx(1.0, abs=0.2)
    assert generation.json_attribute("langfuse.observation.metadata.latency_ms") == pytest.approx(4.0, abs=0.2)
    assert generation.end_ns - generation.start_ns <= 4_000_000 + 1_000  # ends at the upstream call's end

    assert guardrail.name == GUARDRAIL_NAME
    assert guardrail.json_attribute("langfuse.observation.input") == {"sql": GOOD_SQL}
    assert guardrail.json_attribute("langfuse.observation.output")["valid"] is True
    assert "langfuse.observation.level" not in guardrail.attributes
    assert root.attributes["langfuse.observation.output"] == GOOD_SQL
    assert root.json_attribute("langfuse.observation.metadata.status") == 200


def test_the_vote_s_agreement_reaches_langfuse_as_a_score_on_the_trace(receiver: OtlpReceiver) -> None:
    tracer = tracer_for(receiver)
    answer = answer_for(GOOD_SQL)
    answer.agreement = {"candidates": 9, "agreeing": 7, "ratio": 0.7778}
    traced_request(tracer, new_record(), answer)
    traced_request(tracer, new_record("req-0002"), answer_for(GOOD_SQL))  # no vote ran: no score
    tracer.shutdown()

    root = next(span for span in receiver.by_type("span")
                if span.json_attribute("langfuse.trace.metadata.request_id") == "req-0001")
    (score,) = receiver.scores
    assert score["name"] == AGREEMENT_SCORE and score["value"] == pytest.approx(0.7778)
    assert score["dataType"] == "NUMERIC" and score["traceId"] == root.trace_id
    assert score["comment"] == "7 of 9 candidate queries agree"


def test_rejected_sql_makes_the_guardrail_a_warning(receiver: OtlpReceiver) -> None:
    tracer = tracer_for(receiver)
    traced_request(tracer, new_record(), answer_for("DROP TABLE orders"), status=422, error_code="unsafe_sql")
    tracer.shutdown()

    guardrail = one(receiver.by_type("guardrail"))
    assert guardrail.attributes["langfuse.observation.level"] == "WARNING"
    assert guardrail.attributes["langfuse.observation.status_message"] == "unsafe_sql"
    assert guardrail.json_attribute("langfuse.observation.output")["valid"] is False
    root = one(receiver.by_type("span"))
    assert root.attributes["langfuse.observation.level"] == "WARNING"


def guardrail_input_redacted(receiver: OtlpReceiver, sql: str) -> Any:
    """Trace one request answered with `sql`, redaction on: no export holds the question's value; the guardrail's
    input as exported."""
    tracer = tracer_for(receiver, redact=True)
    traced_request(tracer, new_record(), answer_for(sql))
    tracer.shutdown()

    assert receiver.bodies
    assert not any(b"John Smith" in body for body in receiver.bodies)
    return one(receiver.by_type("guardrail")).json_attribute("langfuse.observation.input")


def test_redaction_keeps_the_question_out_of_the_whole_export(receiver: OtlpReceiver) -> None:
    # The question's value travels inside the SQL too: the generation's output, the check's input and output.
    assert guardrail_input_redacted(receiver, SQL_WITH_THE_QUESTIONS_VALUE) == {
        "sql": "SELECT * FROM orders WHERE customer = '?'"}
    generation = one(receiver.by_type("generation"))
    assert generation.json_attribute("langfuse.observation.input") == {"question": REDACTED, "schema": SCHEMA}


# The training data's own quoting (b-mc2/sql-create-context): values in double quotes, which SQLite reads as strings
# when no column has that name.
TRAINING_DATA_QUOTING = 'SELECT * FROM orders WHERE customer = "John Smith" AND total > 100'


def test_redaction_covers_values_in_double_quotes_as_the_training_data_writes_them(receiver: OtlpReceiver) -> None:
    assert guardrail_input_redacted(receiver, TRAINING_DATA_QUOTING) == {
        "sql": "SELECT * FROM orders WHERE customer = '?' AND total > '?'"}


def test_redaction_keeps_double_quoted_names_the_schema_has() -> None:
    from gateway.observability.redact import redact_sql

    schema = 'CREATE TABLE people ("first name" text, city text)'
    assert redact_sql('SELECT "first name" FROM people WHERE city = "Paris"', schema=schema) == (
        "SELECT \"first name\" FROM people WHERE city = '?'")
    # Without the schema, a double-quoted word compared with a column is taken for a value.
    assert redact_sql('SELECT name FROM people WHERE city = "Paris" OR "Rome" = city') == (
        "SELECT name FROM people WHERE city = '?' OR '?' = city")


def test_unredacted_question_is_exported(receiver: OtlpReceiver) -> None:
    """The counterpart of the redaction test: the same question does reach Langfuse when redaction is off."""
    tracer = tracer_for(receiver, redact=False)
    traced_request(tracer, new_record(), answer_for(SQL_WITH_THE_QUESTIONS_VALUE))
    tracer.shutdown()
    assert any(b"John Smith" in body for body in receiver.bodies)


async def test_streamed_body_ends_the_trace_in_another_task(receiver: OtlpReceiver) -> None:
    tracer = tracer_for(receiver)
    record = new_record("req-stream")
    trace = tracer.start(record, question=QUESTION, schema=SCHEMA)
    trace.start_generation(model=MODEL, parameters=PARAMETERS)
    handler_task = asyncio.current_task()
    finished_in: list[asyncio.Task[Any] | None] = []

    async def body() -> AsyncIterator[str]:
        try:
            for index, piece in enumerate(("SELECT * ", "FROM orders")):
                if index == 0:
                    trace.first_token()
                yield piece
            record.answer = answer_for("SELECT * FROM orders")
            record.status = 200
        finally:
            finished_in.append(asyncio.current_task())
            tracer.finish(record, 0.02)

    async def consume() -> str:
        return "".join([piece async for piece in body()])

    assert await asyncio.create_task(consume()) == "SELECT * FROM orders"
    assert finished_in and finished_in[0] is not handler_task
    assert tracer.flush(5.0)

    generation = one(receiver.by_type("generation"))
    assert generation.attributes["langfuse.observation.output"] == "SELECT * FROM orders"
    assert "langfuse.observation.completion_start_time" in generation.attributes
    root = one(receiver.by_type("span"))
    assert root.json_attribute("langfuse.trace.metadata.request_id") == "req-stream"
    tracer.shutdown()


def test_an_upstream_failure_ends_the_open_generation_as_an_error(receiver: OtlpReceiver) -> None:
    tracer = tracer_for(receiver)
    traced_request(tracer, new_record(), None, status=504, error_code="upstream_timeout")
    tracer.shutdown()

    generation = one(receiver.by_type("generation"))
    assert generation.attributes["langfuse.observation.level"] == "ERROR"
    assert generation.attributes["langfuse.observation.status_message"] == "upstream_timeout"
    assert not receiver.by_type("guardrail")
    assert one(receiver.by_type("span")).attributes["langfuse.observation.level"] == "ERROR"


def test_a_cached_answer_has_no_generation_but_keeps_its_check(receiver: OtlpReceiver) -> None:
    tracer = tracer_for(receiver)
    traced_request(tracer, new_record(), answer_for(GOOD_SQL, cached=True))
    tracer.shutdown()

    assert not receiver.by_type("generation")
    guardrail = one(receiver.by_type("guardrail"))
    assert guardrail.json_attribute("langfuse.observation.metadata.cached") is True
    assert one(receiver.by_type("span")).json_attribute("langfuse.observation.metadata.cache") == "hit"


def test_calls_in_any_order_never_raise_and_finish_once(receiver: OtlpReceiver) -> None:
    tracer = tracer_for(receiver)
    record = new_record()
    tracer.finish(record, 0.0)  # no trace on the record yet
    trace = tracer.start(record, question=QUESTION, schema=SCHEMA)
    trace.end_generation(output="x", prompt_tokens=1, completion_tokens=1)  # before it was started
    trace.start_generation(model=MODEL, parameters={"odd": object()})
    trace.start_generation(model=MODEL, parameters=PARAMETERS)  # a second start is ignored
    trace.end_generation(output=GOOD_SQL, prompt_tokens=5, completion_tokens=2, finish_reason="stop")
    trace.sql_check(query=GOOD_SQL, check=answer_for(GOOD_SQL).check)
    record.answer, record.status = answer_for(GOOD_SQL), 200
    tracer.finish(record, 0.01)
    tracer.finish(record, 0.01)
    trace.sql_check(query="SELECT 1", check={"valid": True})  # after the end: dropped
    trace.first_token()
    tracer.shutdown()
    tracer.shutdown()

    assert len(receiver.spans) == 3
    generation = one(receiver.by_type("generation"))
    assert generation.json_attribute("langfuse.observation.usage_details") == {"input": 5, "output": 2, "total": 7}
    assert one(receiver.by_type("guardrail")).json_attribute("langfuse.observation.input") == {"sql": GOOD_SQL}


def test_without_keys_nothing_is_imported_constructed_or_started() -> None:
    probe = (
        "import json, sys, threading\n"
        "from gateway.observability.tracing import NoopTracer, build_tracer\n"
        "tracers = [build_tracer(None, None, None, False), build_tracer('pk', None, 'http://x', True),\n"
        "           build_tracer(None, 'sk', None, False), build_tracer('', '', None, False)]\n"
        "print(json.dumps({'noop': all(isinstance(t, NoopTracer) for t in tracers),\n"
        "  'enabled': any(t.enabled for t in tracers),\n"
        "  'imported': sorted(m for m in sys.modules if m.startswith(('langfuse', 'opentelemetry'))),\n"
        "  'threads': threading.active_count()}))\n"
    )
    done = subprocess.run([sys.executable, "-c", probe], cwd=REPO, capture_output=True, text=True, timeout=60,
                          check=True)
    assert json.loads(done.stdout) == {"noop": True, "enabled": False, "imported": [], "threads": 1}


def test_noop_tracer_accepts_the_whole_request_cycle() -> None:
    tracer = build_tracer(None, None, None, redact_question=False)
    record = new_record()
    traced_request(tracer, record, answer_for(GOOD_SQL))
    assert isinstance(tracer, NoopTracer) and isinstance(record.trace, NoopTrace)
    assert tracer.flush(0.1)
    tracer.shutdown()


def test_shutdown_flushes_what_was_queued_and_leaves_no_threads(receiver: OtlpReceiver) -> None:
    threads_before = {t.ident for t in threading.enumerate()}
    tracer = tracer_for(receiver, flush_interval_s=600.0)  # nothing leaves on its own during the test
    traced_request(tracer, new_record(), answer_for(GOOD_SQL))
    assert receiver.requests_started == 0 and not receiver.spans
    tracer.shutdown()
    assert {s.observation_type for s in receiver.spans} == {"span", "generation", "guardrail"}
    left = {t.ident for t in threading.enumerate() if t.is_alive()} - receiver.handler_threads
    assert left <= threads_before


def test_receiver_refuses_wrong_credentials(receiver: OtlpReceiver) -> None:
    tracer = build_tracer(receiver.public_key, "sk-wrong", receiver.base_url, False)
    traced_request(tracer, new_record(), answer_for(GOOD_SQL))
    tracer.shutdown()
    assert receiver.unauthorized >= 1 and not receiver.spans


def test_two_tracers_with_one_public_key_each_export_to_their_own_server() -> None:
    with otlp_receiver() as first, otlp_receiver() as second:
        tracer_a = tracer_for(first)
        tracer_b = tracer_for(second)  # same public key, alive at the same time
        traced_request(tracer_a, new_record("req-a"), answer_for(GOOD_SQL))
        traced_request(tracer_b, new_record("req-b"), answer_for(GOOD_SQL))
        tracer_a.shutdown()
        tracer_b.shutdown()
        tracer_c = tracer_for(first)  # after a shutdown with that key, a new tracer still exports
        traced_request(tracer_c, new_record("req-c"), answer_for(GOOD_SQL))
        tracer_c.shutdown()

    def request_ids(receiver: OtlpReceiver) -> set[str]:
        return {s.json_attribute("langfuse.trace.metadata.request_id") for s in receiver.spans}

    assert request_ids(first) == {"req-a", "req-c"}
    assert request_ids(second) == {"req-b"}


@pytest.fixture
def export_threads(monkeypatch: pytest.MonkeyPatch) -> list[threading.Thread]:
    """The threads every OTLP export ran on (a spy around the real exporter, which still sends)."""
    threads: list[threading.Thread] = []
    real_export = OTLPSpanExporter.export

    def spy(self: OTLPSpanExporter, spans: Any) -> Any:
        threads.append(threading.current_thread())
        return real_export(self, spans)

    monkeypatch.setattr(OTLPSpanExporter, "export", spy)
    return threads


def run_requests(tracer: RequestTracer, count: int) -> None:
    for index in range(count):
        traced_request(tracer, new_record(f"req-{index}"), answer_for(GOOD_SQL))


# Tests never time the machine: "costs requests nothing" is asserted as what the tracer decides (requests only
# queue spans; exports run on the exporter's own thread; shutdown gives up on a held export instead of waiting).
def test_a_stuck_langfuse_slows_neither_requests_nor_shutdown(export_threads: list[threading.Thread]) -> None:
    with otlp_receiver(mode="slow", delay_s=60.0) as receiver:
        tracer = tracer_for(receiver, flush_interval_s=0.01, shutdown_timeout_s=0.2)
        traced_request(tracer, new_record("req-first"), answer_for(GOOD_SQL))
        receiver.wait_until(lambda r: r.requests_started >= 1)  # the exporter now waits on the held answer
        run_requests(tracer, 20)
        # Twenty requests finished while the one export is still held: none of them waited for it.
        assert receiver.spans == [] and not receiver.release.is_set()
        tracer.shutdown()
        # Shutdown returned with that export still held: it gave up at its bound rather than waiting 60 s.
        assert receiver.spans == [] and not receiver.release.is_set()
    assert export_threads and threading.main_thread() not in export_threads


def assert_cheap_requests_and_bounded_shutdown(tracer: RequestTracer, export_threads: list[threading.Thread]
                                               ) -> None:
    run_requests(tracer, 20)
    tracer.shutdown()
    assert threading.current_thread() not in export_threads


def test_a_failing_langfuse_costs_requests_nothing(export_threads: list[threading.Thread]) -> None:
    with otlp_receiver(mode="fail") as receiver:
        tracer = tracer_for(receiver, flush_interval_s=0.01, shutdown_timeout_s=0.5)
        traced_request(tracer, new_record("req-first"), answer_for(GOOD_SQL))
        receiver.wait_until(lambda r: r.requests_started >= 1)  # exports are being answered with 500
        assert_cheap_requests_and_bounded_shutdown(tracer, export_threads)
        assert not receiver.spans
    assert export_threads  # the exporter did try, on its own thread


def test_an_unreachable_langfuse_costs_requests_nothing(export_threads: list[threading.Thread]) -> None:
    with otlp_receiver() as receiver:
        closed_url = receiver.base_url
    tracer = build_tracer("pk-lf-test", "sk-lf-test", closed_url, False, flush_interval_s=0.01,
                          shutdown_timeout_s=0.5)
    assert isinstance(tracer, LangfuseTracer)
    assert_cheap_requests_and_bounded_shutdown(tracer, export_threads)
