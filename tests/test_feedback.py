"""Feedback and the verified-query memory at the HTTP boundary: every answer has an id that `POST /v1/feedback`
finds; a 👍 makes the same question (or one differing only in values) answer from memory, checked again, with no
model call (the fake upstream counts calls); a changed schema, a 👎 or a check the pair now fails mean the model is
asked again; a correction is checked before it is kept."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest

from gateway.app import create_app
from tests import faults
from tests.conftest import SECOND_KEY, asgi_client, make_settings
from tests.servers import FakeUpstream, fake_upstream

SINGER = "CREATE TABLE singer (Singer_ID int, Name text, Country text, Age int)"
FROM_FRANCE = "SELECT Name FROM singer WHERE Country = 'France' AND Age > 30"
FRANCE = "Which singers are from France and older than 30?"


@asynccontextmanager
async def gateway(*answers: str, **settings: Any) -> AsyncIterator[tuple[httpx.AsyncClient, FakeUpstream]]:
    """A gateway whose model answers `answers` in turn (the last one repeats); no cache unless asked, so that every
    answer not from memory is a model call the fake counts."""
    with fake_upstream(*[faults.ok(text) for text in answers]) as upstream:
        app = create_app(make_settings(upstream_url=upstream.base_url, sql_candidates=0,
                                       **{"cache_enabled": False, **settings}))
        async with asgi_client(app) as client:
            yield client, upstream


async def ask(client: httpx.AsyncClient, question: str = FRANCE, schema: str = SINGER, **extra: Any
              ) -> dict[str, Any]:
    response = await client.post("/v1/sql", json={"question": question, "schema": schema, **extra})
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def rate(client: httpx.AsyncClient, answer_id: str, rating: str, **extra: Any) -> httpx.Response:
    return await client.post("/v1/feedback", json={"id": answer_id, "rating": rating, **extra})


async def test_a_thumbs_up_makes_the_same_question_answer_from_memory_without_the_model() -> None:
    async with gateway(FROM_FRANCE) as (client, upstream):
        first = await ask(client)
        assert first["check"]["source"] == "generated" and first["check"]["memory"] is None
        rated = await rate(client, first["id"], "up", comment="right")
        again = await ask(client)
    assert rated.status_code == 201, rated.text
    receipt = rated.json()
    assert receipt["answer_id"] == first["id"] and receipt["object"] == "feedback" and receipt["retired"] == 0
    assert receipt["verified"]["verified_by"] == "tester" and receipt["verified"]["origin"] == "rating"
    assert again["sql"] == FROM_FRANCE and again["cached"] is False
    assert again["check"]["source"] == "verified" and again["check"]["valid"] is True
    assert again["check"]["memory"] | {"verified_at": None} == {
        "id": receipt["verified"]["id"], "verified_by": "tester", "verified_at": None, "origin": "rating",
        "rebound": False}
    assert again["id"] != first["id"]
    assert len(upstream.requests) == 1  # the second answer never reached the model


async def test_memory_comes_before_the_cache() -> None:
    async with gateway(FROM_FRANCE, cache_enabled=True) as (client, upstream):
        first = await ask(client)
        cached = await ask(client)
        await rate(client, first["id"], "up")
        verified = await ask(client)
    assert cached["check"]["source"] == "cache" and cached["cached"] is True
    assert verified["check"]["source"] == "verified"
    assert len(upstream.requests) == 1


@pytest.mark.parametrize(("question", "expected"), [
    ("Which singers are from Spain and older than 45?",
     "SELECT Name FROM singer WHERE Country = 'Spain' AND Age > 45"),
    ("which singers are from Cabo Verde and older than 30",
     "SELECT Name FROM singer WHERE Country = 'Cabo Verde' AND Age > 30"),
])
async def test_a_question_that_differs_only_in_values_gets_them_rebound_into_the_verified_query(
        question: str, expected: str) -> None:
    async with gateway(FROM_FRANCE) as (client, upstream):
        first = await ask(client)
        await rate(client, first["id"], "up")
        other = await ask(client, question)
    assert other["sql"] == expected
    assert other["check"]["source"] == "verified" and other["check"]["memory"]["rebound"] is True
    assert len(upstream.requests) == 1


async def test_a_value_the_query_does_not_hold_is_not_guessed() -> None:
    # "the Name" is a capitalised word the query has no literal for: another word there could mean another column.
    listed = "SELECT Name FROM singer"
    async with gateway(listed, "SELECT Country FROM singer") as (client, upstream):
        first = await ask(client, "List the Name of every singer")
        await rate(client, first["id"], "up")
        same = await ask(client, "list the Name of every singer.")
        other = await ask(client, "List the Country of every singer")
    assert same["check"]["source"] == "verified" and same["sql"] == listed
    assert other["check"]["source"] == "generated" and other["sql"] == "SELECT Country FROM singer"
    assert len(upstream.requests) == 2


async def test_a_changed_schema_is_answered_by_the_model_again_but_not_a_reformatted_one() -> None:
    reformatted = "CREATE TABLE singer (\n  Singer_ID INT, -- the key\n  Name TEXT,\n  Country TEXT,\n  Age INT\n)"
    changed = "CREATE TABLE singer (Singer_ID int, Name text, Country text, Age int, Label text)"
    async with gateway(FROM_FRANCE) as (client, upstream):
        first = await ask(client)
        await rate(client, first["id"], "up")
        same_schema = await ask(client, schema=reformatted)
        other_schema = await ask(client, schema=changed)
    assert same_schema["check"]["source"] == "verified"
    assert other_schema["check"]["source"] == "generated"
    assert len(upstream.requests) == 2


async def test_a_later_thumbs_down_retires_the_verified_query() -> None:
    async with gateway(FROM_FRANCE) as (client, upstream):
        first = await ask(client)
        await rate(client, first["id"], "up")
        verified = await ask(client)
        down = await rate(client, verified["id"], "down", comment="wrong: should list all ages")
        after = await ask(client)
    assert verified["check"]["source"] == "verified"
    assert down.status_code == 201 and down.json()["retired"] == 1 and down.json()["verified"] is None
    assert after["check"]["source"] == "generated"
    assert len(upstream.requests) == 2


async def test_a_correction_is_checked_before_it_is_kept_and_then_answers() -> None:
    right = "SELECT Name FROM singer WHERE Country = 'France' AND Age >= 30"
    async with gateway(FROM_FRANCE) as (client, upstream):
        first = await ask(client)
        refused = await rate(client, first["id"], "down", corrected_sql="SELECT Nme FROM singer")
        unsafe = await rate(client, first["id"], "down", corrected_sql="DELETE FROM singer")
        still_generated = await ask(client)
        corrected = await rate(client, first["id"], "down", corrected_sql=right)
        answered = await ask(client)
        rebound = await ask(client, "Which singers are from Peru and older than 50?")
    assert refused.status_code == 422, refused.text
    error = refused.json()["error"]
    assert error["code"] == "ungrounded_sql" and error["param"] == "corrected_sql"
    assert error["message"].startswith("The corrected SQL was rejected") and error["check"]["valid"] is False
    assert unsafe.status_code == 422 and unsafe.json()["error"]["code"] == "unsafe_sql"
    assert still_generated["check"]["source"] == "generated"  # a refused correction changed nothing
    assert corrected.status_code == 201 and corrected.json()["corrected"] is True
    assert corrected.json()["verified"]["origin"] == "correction"
    assert answered["sql"] == right and answered["check"]["memory"]["origin"] == "correction"
    assert rebound["sql"] == "SELECT Name FROM singer WHERE Country = 'Peru' AND Age >= 50"
    assert len(upstream.requests) == 2


async def test_a_correction_in_the_answers_dialect_is_kept_as_sqlite_and_answers_other_dialects() -> None:
    async with gateway("SELECT Name FROM singer LIMIT 3") as (client, upstream):
        first = await ask(client, "Three singers' names", dialect="tsql")
        assert first["sql"] == "SELECT TOP 3 Name FROM singer"
        corrected = await rate(client, first["id"], "down", corrected_sql="SELECT TOP 3 Name FROM singer ORDER BY Age")
        in_tsql = await ask(client, "Three singers' names", dialect="tsql")
        in_sqlite = await ask(client, "Three singers' names")
    assert corrected.status_code == 201, corrected.text
    assert in_tsql["check"]["source"] == "verified" and in_tsql["sql"] == "SELECT TOP 3 Name FROM singer ORDER BY Age"
    assert in_sqlite["sql"] == "SELECT Name FROM singer ORDER BY Age LIMIT 3"
    assert len(upstream.requests) == 1


async def test_a_verified_query_the_check_now_refuses_is_not_used() -> None:
    # A pair kept by an older gateway whose check was weaker: it names a column the schema lacks. It matches the
    # question and the schema, is checked again, fails, and the model answers instead.
    from gateway.memory.fingerprint import schema_fingerprint
    from gateway.memory.question import question_shape
    from gateway.store.records import VerifiedPair

    async with gateway(FROM_FRANCE) as (client, upstream):
        store = client._transport.app.state.sqlgate.store  # type: ignore[attr-defined]
        await store.add_pair(VerifiedPair(
            id="vp_old", fingerprint=schema_fingerprint(SINGER), question_key=question_shape(FRANCE).key,
            question=FRANCE, schema=SINGER, source_query="SELECT Nickname FROM singer", origin="rating",
            answer_id=None, feedback_id=None, verified_by="old-gateway", verified_at="2025-01-01T00:00:00.000000Z"))
        answer = await ask(client)
        metrics = (await client.get("/metrics")).text
    assert answer["check"]["source"] == "generated" and answer["sql"] == FROM_FRANCE
    assert 'sqlgate_memory_requests_total{result="failed_check"} 1.0' in metrics
    assert len(upstream.requests) == 1


@pytest.mark.parametrize("stream", [False, True], ids=["plain", "streaming"])
async def test_every_route_gives_its_answer_an_id_feedback_finds(stream: bool) -> None:
    async with gateway(FROM_FRANCE) as (client, upstream):
        upstream.faults = [faults.stream_ok([FROM_FRANCE]) if stream else faults.ok(FROM_FRANCE)]
        body = {"schema": SINGER, "stream": stream}
        responses = [
            await client.post("/v1/completions", json={**body, "prompt": FRANCE}),
            await client.post("/v1/chat/completions", json={**body, "messages": [{"role": "user", "content": FRANCE}]}),
            await client.post("/v1/responses", json={**body, "input": FRANCE}),
        ]
        if not stream:
            responses.append(await client.post("/v1/sql", json={"question": FRANCE, "schema": SINGER}))
            responses.append(await client.post("/generate", json={"question": FRANCE, "context": SINGER}))
        ids = [answer_id(response, stream) for response in responses]
        rated = [await rate(client, answer_id_, "down") for answer_id_ in ids]
    assert len(set(ids)) == len(ids)
    assert [r.status_code for r in rated] == [201] * len(ids), [r.text for r in rated]


def answer_id(response: httpx.Response, stream: bool) -> str:
    assert response.status_code == 200, response.text
    if not stream:
        return str(response.json()["id"])
    for line in response.text.splitlines():
        if line.startswith("data: {") and '"id"' in line:
            import orjson

            event = orjson.loads(line[len("data: "):])
            found = event.get("id") or (event.get("response") or {}).get("id")
            if found:
                return str(found)
    raise AssertionError(f"no id in the stream: {response.text[:300]}")


async def test_the_raters_key_name_is_who_verified_it() -> None:
    async with gateway(FROM_FRANCE) as (client, _):
        first = await ask(client)
        rated = await client.post("/v1/feedback", json={"id": first["id"], "rating": "up"},
                                  headers={"authorization": f"Bearer {SECOND_KEY}"})
        again = await ask(client)
    assert rated.json()["verified"]["verified_by"] == "second"
    assert again["check"]["memory"]["verified_by"] == "second"


@pytest.mark.parametrize(("body", "status", "code", "param"), [
    ({"id": "sql-0000", "rating": "up"}, 404, "not_found", "id"),
    ({"id": "sql-0000", "rating": "sideways"}, 400, "invalid_request", "rating"),
    ({"id": "sql-0000"}, 400, "invalid_request", "rating"),
    ({"id": "sql-0000", "rating": "up", "stars": 5}, 400, "invalid_request", "stars"),
    ({"id": "sql-0000", "rating": "up", "comment": "x" * 2001}, 400, "invalid_request", "comment"),
])
async def test_bad_feedback_gets_a_clear_openai_shaped_error(body: dict[str, Any], status: int, code: str,
                                                             param: str) -> None:
    async with gateway(FROM_FRANCE) as (client, _):
        response = await client.post("/v1/feedback", json=body)
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert (error["code"], error["param"]) == (code, param)


async def test_a_lone_surrogate_in_a_comment_is_a_400_never_a_500() -> None:
    async with gateway(FROM_FRANCE) as (client, _):
        first = await ask(client)
        raw = '{"id": "ID", "rating": "up", "comment": "bad\\ud800"}'.replace("ID", first["id"])
        response = await client.post("/v1/feedback", content=raw.encode(), headers={"content-type": "application/json"})
    assert response.status_code == 400 and response.json()["error"]["param"] == "comment"


async def test_ratings_are_counted_by_rating() -> None:
    async with gateway(FROM_FRANCE) as (client, _):
        first = await ask(client)
        for rating in ("up", "down", "down"):
            assert (await rate(client, first["id"], rating)).status_code == 201
        metrics = (await client.get("/metrics")).text
    assert 'sqlgate_feedback_total{rating="up"} 1.0' in metrics
    assert 'sqlgate_feedback_total{rating="down"} 2.0' in metrics


async def test_export_lists_the_live_verified_pairs_since_a_date_with_counts() -> None:
    async with gateway(FROM_FRANCE, "SELECT count(*) FROM singer") as (client, _):
        first = await ask(client)
        await rate(client, first["id"], "up")
        second = await ask(client, "How many singers are there?")
        await rate(client, second["id"], "down", corrected_sql="SELECT count(Singer_ID) FROM singer")
        everything = (await client.get("/v1/feedback/export")).json()
        later = (await client.get("/v1/feedback/export", params={"since": "2999-01-01"})).json()
        bad = await client.get("/v1/feedback/export", params={"since": "yesterday"})
    assert everything["counts"] == {"rows": 2, "ratings": 1, "corrections": 1}
    assert [(row["question"], row["context"], row["answer"]) for row in everything["data"]] == [
        (FRANCE, SINGER, FROM_FRANCE), ("How many singers are there?", SINGER, "SELECT count(Singer_ID) FROM singer")]
    assert later["data"] == [] and later["counts"]["rows"] == 0
    assert bad.status_code == 400 and bad.json()["error"]["param"] == "since"


async def test_a_rating_is_a_langfuse_score_on_the_answers_own_trace() -> None:
    from langfuse import Langfuse

    from gateway.observability.tracing import FEEDBACK_SCORE
    from tests.otlp_receiver import otlp_receiver

    with otlp_receiver() as receiver:
        async with gateway(FROM_FRANCE, langfuse_public_key=receiver.public_key,
                           langfuse_secret_key=receiver.secret_key, langfuse_base_url=receiver.base_url
                           ) as (client, _):
            first = await ask(client)
            await rate(client, first["id"], "down", comment="should include age 30")
        # The app's shutdown flushed spans and scores.
        receiver.wait_until(lambda r: bool(r.scores) and any(s.name == "sql" for s in r.spans))
        # The answer's trace is the one its id names (a root span under a remote parent: Langfuse's trace context).
        root = next(span for span in receiver.by_type("span") if span.name == "sql")
    (score,) = receiver.scores
    assert score["name"] == FEEDBACK_SCORE and score["value"] == 0 and score["dataType"] == "BOOLEAN"
    assert score["traceId"] == root.trace_id == Langfuse.create_trace_id(seed=first["id"])
    assert score["comment"] == "should include age 30"
    assert root.json_attribute("langfuse.observation.metadata.answer_id") == first["id"]


async def test_a_verified_answer_in_another_dialect_is_checked_by_the_check_database_too(postgres_cluster: Any) -> None:
    # The whole check, to its last step: with a PostgreSQL check database configured, a verified answer asked for
    # in PostgreSQL is run there again before it is sent, as the model's answer was.
    async with gateway(FROM_FRANCE, check_postgres_url=postgres_cluster.check_url) as (client, upstream):
        first = await ask(client, dialect="postgres")
        await rate(client, first["id"], "up")
        again = await ask(client, dialect="postgres")
    assert first["check"]["target_verified"] == "engine"
    assert again["check"]["source"] == "verified" and again["check"]["target_verified"] == "engine"
    assert len(upstream.requests) == 1
