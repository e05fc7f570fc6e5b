"""The one answer pipeline, at the transport boundary: plain and streaming requests agree on every route and on
cache hits, nothing that failed the check leaves the gateway, truncation is never an answer, identical concurrent
misses share one upstream call, and the cache key covers exactly what the model sees."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import httpx
import orjson
import pytest

from gateway.app import create_app
from gateway.settings import Settings
from tests import faults
from tests.conftest import AUTH, asgi_client, make_settings
from tests.servers import Fault, fake_upstream, serve_in_thread, wait_for

SCHEMA = "CREATE TABLE users (id int, name text, email text)"
QUESTION = "What are the users' names?"
GOOD = "SELECT name FROM users"
HIDDEN_STATEMENT = "SELECT name FROM users;\n\nDO $$ BEGIN EXECUTE 'DROP TABLE users'; END $$;"
FENCED = "Here is the query:\n```sql\nSELECT name FROM users\n```\nThis returns every user's name."


def completion_body(stream: bool = False, **extra: Any) -> dict[str, Any]:
    return {"model": "qwen2.5-1.5b-sql", "prompt": QUESTION, "schema": SCHEMA, "stream": stream, **extra}


def chat_body(stream: bool = False) -> dict[str, Any]:
    return {"model": "qwen2.5-1.5b-sql", "messages": [{"role": "user", "content": QUESTION}], "schema": SCHEMA,
            "stream": stream}


def sse_events(text: str) -> list[dict[str, Any]]:
    events = []
    for line in text.splitlines():
        if line.startswith("data: ") and line != "data: [DONE]":
            events.append(orjson.loads(line[len("data: "):]))
    assert text.rstrip().endswith("data: [DONE]")
    return events


def streamed_text(events: list[dict[str, Any]]) -> str:
    parts = []
    for event in events:
        for choice in event.get("choices", []):
            parts.append(choice.get("text") or (choice.get("delta") or {}).get("content") or "")
    return "".join(parts)


async def plain_and_streamed(client: httpx.AsyncClient, route: str) -> tuple[httpx.Response, list[dict[str, Any]]]:
    body = completion_body if route == "/v1/completions" else chat_body
    plain = await client.post(route, json=body())
    streamed = await client.post(route, json=body(stream=True))
    assert streamed.status_code == 200
    return plain, sse_events(streamed.text)


def plain_text(route: str, response: httpx.Response) -> str:
    choice = response.json()["choices"][0]
    return str(choice["text"] if route == "/v1/completions" else choice["message"]["content"])


@pytest.mark.parametrize("route", ["/v1/completions", "/v1/chat/completions"])
@pytest.mark.parametrize("model_text", [GOOD, FENCED], ids=["bare", "fenced-with-prose"])
async def test_a_stream_delivers_exactly_the_plain_answer(route: str, model_text: str) -> None:
    # Fresh answers for both (cache off), then the same pair again from the cache.
    for cache_enabled in (False, True):
        with fake_upstream(faults.ok(model_text)) as upstream:
            upstream.faults = [faults.ok(model_text), faults.stream_ok([model_text[:9], model_text[9:]]),
                               faults.ok(model_text)]
            app = create_app(make_settings(upstream_url=upstream.base_url, cache_enabled=cache_enabled))
            async with asgi_client(app) as client:
                plain, events = await plain_and_streamed(client, route)
                assert plain.status_code == 200
                assert plain_text(route, plain) == GOOD
                assert streamed_text(events) == GOOD
                assert events[-1]["sql"]["valid"] is True
                if cache_enabled:
                    again, again_events = await plain_and_streamed(client, route)
                    assert again.headers.get("x-sqlgate-cache") == "hit"
                    assert plain_text(route, again) == streamed_text(again_events) == GOOD
                    assert len(upstream.requests) == 1  # everything after the first answer came from the cache


@pytest.mark.parametrize("route", ["/v1/completions", "/v1/chat/completions"])
async def test_a_hidden_second_statement_never_leaves_the_gateway(route: str) -> None:
    with fake_upstream(faults.ok(HIDDEN_STATEMENT)) as upstream:
        upstream.faults = [faults.ok(HIDDEN_STATEMENT), faults.stream_ok([HIDDEN_STATEMENT[:30],
                                                                          HIDDEN_STATEMENT[30:]])]
        app = create_app(make_settings(upstream_url=upstream.base_url, cache_enabled=False, sql_candidates=0))
        async with asgi_client(app) as client:
            plain, events = await plain_and_streamed(client, route)
    assert plain.status_code == 422
    code = plain.json()["error"]["code"]
    assert code in ("unsafe_sql", "invalid_sql")  # SQLite can't even parse `DO $$`; either way it is refused
    assert streamed_text(events) == ""  # not one character of the model's text
    assert events[-1]["error"]["code"] == code
    assert "DROP TABLE" not in "".join(str(e.get("choices")) for e in events)


TRUNCATED = "SELECT Name, Country FROM singer WHERE Name = 'a',"
SINGER = "CREATE TABLE singer (Singer_ID int, Name text, Country text)"


@pytest.mark.parametrize("text", [TRUNCATED, "SELECT Name FROM singer"], ids=["dangling-comma", "parses"])
async def test_a_length_stop_is_never_an_answer_on_any_route(text: str) -> None:
    # Even a prefix that parses is refused: the model was cut off, so it is not the query it meant.
    with fake_upstream(faults.finished(text, "length")) as upstream:
        upstream.faults = [faults.finished(text, "length"), faults.finished(text, "length"),
                           faults.finished(text, "length"), faults.stream_finished([text], "length")]
        app = create_app(make_settings(upstream_url=upstream.base_url, cache_enabled=False, sql_candidates=0))
        async with asgi_client(app) as client:
            sql = await client.post("/v1/sql", json={"question": "Names?", "schema": SINGER})
            generate = await client.post("/generate", json={"question": "Names?", "context": SINGER})
            plain = await client.post("/v1/completions", json={**completion_body(), "schema": SINGER})
            streamed = await client.post("/v1/completions", json={**completion_body(stream=True), "schema": SINGER})
    for response in (sql, generate, plain):
        assert response.status_code == 422, response.text
        assert response.json()["error"]["code"] == "truncated_sql"
    events = sse_events(streamed.text)
    assert streamed_text(events) == ""
    assert events[-1]["error"]["code"] == "truncated_sql"


async def test_every_route_says_why_the_model_stopped() -> None:
    with fake_upstream(faults.ok(GOOD)) as upstream:
        app = create_app(make_settings(upstream_url=upstream.base_url, cache_enabled=False))
        async with asgi_client(app) as client:
            sql = await client.post("/v1/sql", json={"question": QUESTION, "schema": SCHEMA})
            generate = await client.post("/generate", json={"question": QUESTION, "context": SCHEMA})
            plain = await client.post("/v1/completions", json=completion_body())
    assert sql.json()["finish_reason"] == "stop"
    assert generate.json() == {"sql": GOOD, "finish_reason": "stop"}
    assert plain.json()["choices"][0]["finish_reason"] == "stop"


# ---- cache ------------------------------------------------------------------------------------------------------

async def test_schemas_that_differ_only_in_a_comment_do_not_share_an_answer() -> None:
    # The model sees the comment, so it may answer differently: one caller must not receive the other's answer.
    cents = "CREATE TABLE orders (id int, price int -- price in cents\n)"
    dollars = "CREATE TABLE orders (id int, price int -- price in dollars\n)"
    with fake_upstream(faults.ok("SELECT price FROM orders"), faults.ok("SELECT price / 100 FROM orders")) as up:
        app = create_app(make_settings(upstream_url=up.base_url))
        async with asgi_client(app) as client:
            first = await client.post("/v1/sql", json={"question": "Prices?", "schema": cents})
            second = await client.post("/v1/sql", json={"question": "Prices?", "schema": dollars})
            repeat = await client.post("/v1/sql", json={"question": "Prices?", "schema": cents})
    assert (first.json()["sql"], second.json()["sql"]) == ("SELECT price FROM orders", "SELECT price / 100 FROM orders")
    assert repeat.json()["cached"] is True and repeat.json()["sql"] == "SELECT price FROM orders"
    assert len(up.requests) == 2


def identical_requests_held_on_one_flight(upstream: Any, release: asyncio.Event, count: int, *, stream: bool = False
                                          ) -> list[httpx.Response]:
    """`count` identical completions at once against a real gateway; the upstream's first answer is held until one
    upstream call is in flight and the other `count - 1` requests are waiting on it, then released."""
    app = create_app(make_settings(upstream_url=upstream.base_url))
    state = app.state.sqlgate  # its pipeline exists once the lifespan has run

    async def send(base_url: str) -> list[httpx.Response]:
        async with httpx.AsyncClient(base_url=base_url, headers=AUTH, timeout=30) as client:
            return await asyncio.gather(*[client.post("/v1/completions", json=completion_body(stream=stream))
                                          for _ in range(count)])

    results: list[httpx.Response] = []
    with serve_in_thread(app) as gateway:
        runner = threading.Thread(target=lambda: results.extend(asyncio.run(send(gateway.base_url))))
        runner.start()
        wait_for(lambda: len(upstream.requests) == 1 and state.pipeline.flights.waiting == count - 1,
                 f"one upstream call and {count - 1} requests waiting on it")
        upstream.call_soon(release.set)
        runner.join(timeout=30)
    return results


@pytest.mark.parametrize("stream", [False, True], ids=["plain", "streaming"])
def test_identical_concurrent_misses_make_one_upstream_call(stream: bool) -> None:
    release = asyncio.Event()
    answer = faults.stream_ok([GOOD[:7], GOOD[7:]]) if stream else faults.ok(GOOD)
    with fake_upstream(faults.held(release, answer)) as upstream:
        results = identical_requests_held_on_one_flight(upstream, release, 5, stream=stream)
    assert len(upstream.requests) == 1
    assert len(results) == 5
    texts = [r.json()["choices"][0]["text"] if not r.headers["content-type"].startswith("text/event-stream")
             else streamed_text(sse_events(r.text)) for r in results]
    assert texts == [GOOD] * 5


def test_a_request_waiting_on_a_failed_flight_answers_itself() -> None:
    # The leader's upstream call fails (its replica died, say); the identical request waiting on it must not
    # inherit that failure: it asks the upstream itself.
    release = asyncio.Event()
    with fake_upstream(faults.held(release, faults.status(500)), faults.ok(GOOD)) as upstream:
        results = identical_requests_held_on_one_flight(upstream, release, 2)
    assert sorted(r.status_code for r in results) == [200, 502]
    assert len(upstream.requests) == 2


@pytest.mark.redis
async def test_a_cached_answer_the_check_now_refuses_is_never_served(redis_server: Any) -> None:
    # An entry that an older, weaker check passed: the stored SQL now reads a table outside the schema and a
    # second statement. The gateway re-checks every hit, drops it and answers afresh.
    from redis.asyncio import Redis

    redis = Redis.from_url(redis_server.url)
    await redis.flushdb()  # the session's Redis: other tests' entries must not count below
    with fake_upstream(faults.ok(GOOD)) as upstream:
        settings = make_settings(upstream_url=upstream.base_url, redis_url=redis_server.url)
        app = create_app(settings)
        async with asgi_client(app) as client:
            first = await client.post("/v1/sql", json={"question": QUESTION, "schema": SCHEMA})
            assert first.json()["cached"] is False
            try:
                keys = [key async for key in redis.scan_iter("sqlgate:cache:*")]
                assert len(keys) == 1
                stored = orjson.loads(await redis.get(keys[0]))
                assert stored["valid"] is True
                stored["source_query"] = "SELECT name FROM users; DROP TABLE users"
                await redis.set(keys[0], orjson.dumps(stored))
                second = await client.post("/v1/sql", json={"question": QUESTION, "schema": SCHEMA})
            finally:
                await redis.flushdb()
                await redis.aclose()
    assert second.status_code == 200
    assert second.json()["sql"] == GOOD and second.json()["cached"] is False
    assert len(upstream.requests) == 2


# ---- the candidate step -----------------------------------------------------------------------------------------

BROKEN = "SELECT count(* FROM singer"
COUNT = "CREATE TABLE singer (Singer_ID int, Name text, Country text)"


def sql_request() -> dict[str, Any]:
    return {"question": "How many singers?", "schema": COUNT}


async def run_with(upstream_faults: list[Fault], **settings: Any) -> tuple[httpx.Response, list[bytes]]:
    with fake_upstream(*upstream_faults) as upstream:
        app = create_app(make_settings(upstream_url=upstream.base_url, cache_enabled=False, **settings))
        async with asgi_client(app) as client:
            response = await client.post("/v1/sql", json=sql_request())
        return response, list(upstream.requests)


async def test_when_greedy_fails_the_most_voted_passing_candidate_wins() -> None:
    candidates = ["SELECT count(*) FROM singer", "select COUNT(*) from singer", "SELECT count(* FROM singer",
                  "SELECT count(Name) FROM singer"]
    response, sent = await run_with([faults.ok(BROKEN), faults.candidates(candidates)], sql_candidates=4)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["sql"] == "SELECT count(*) FROM singer"
    assert body["check"]["repair"] | {"latency_ms": 0} == {
        "asked": 4, "passing": 3, "votes": 2, "won": True, "reason": "invalid_sql", "latency_ms": 0,
        "timed_out": False}
    greedy, sampled = (orjson.loads(request) for request in sent)
    assert sampled["prompt"] == greedy["prompt"]  # the same exact training prompt
    assert (sampled["n"], sampled["temperature"], sampled["seed"]) == (4, 0.7, 1234)  # from the config
    assert greedy["temperature"] == 0.0 and "n" not in greedy


async def test_the_grammar_strategy_constrains_only_the_candidate_call_to_the_request_schema() -> None:
    response, sent = await run_with([faults.ok(BROKEN), faults.candidates(["SELECT count(*) FROM singer"] * 2)],
                                    sql_candidates=2)  # the default strategy
    assert Settings.model_fields["sql_candidate_strategy"].default == "grammar"
    assert response.status_code == 200, response.text
    greedy, sampled = (orjson.loads(request) for request in sent)
    assert "structured_outputs" not in greedy  # the greedy answer is the model's own
    grammar = sampled["structured_outputs"]["grammar"]  # the field vLLM >= 0.12 reads (tests/e2e proves it)
    assert grammar.startswith("root ::=") and '"Singer_ID"' in grammar and '"Country"' in grammar
    _, free = await run_with([faults.ok(BROKEN), faults.candidates(["SELECT count(*) FROM singer"] * 2)],
                             sql_candidates=2, sql_candidate_strategy="sample")
    assert "structured_outputs" not in orjson.loads(free[1])


async def test_when_no_candidate_passes_the_refusal_carries_the_failing_query() -> None:
    response, sent = await run_with([faults.ok(BROKEN), faults.candidates([BROKEN, "SELECT FROM"])],
                                    sql_candidates=2)
    assert response.status_code == 422
    error = response.json()["error"]
    assert error["code"] == "invalid_sql"
    assert error["check"]["query"] == BROKEN  # for debugging, inside the error only
    assert error["check"]["repair"]["won"] is False and error["check"]["repair"]["passing"] == 0
    assert len(sent) == 2


async def test_an_unsafe_answer_gets_no_second_try() -> None:
    response, sent = await run_with([faults.ok("DELETE FROM singer")], sql_candidates=4)
    assert response.status_code == 422 and response.json()["error"]["code"] == "unsafe_sql"
    assert len(sent) == 1


async def test_the_candidate_step_is_bounded_by_its_time_budget() -> None:
    never = asyncio.Event()
    response, sent = await run_with([faults.ok(BROKEN), faults.held(never, faults.candidates([GOOD]))],
                                    sql_candidates=4, sql_candidate_budget_s=0.2)
    assert response.status_code == 422 and len(sent) == 2
    assert response.json()["error"]["check"]["repair"]["timed_out"] is True


async def test_the_candidate_step_can_be_turned_off() -> None:
    response, sent = await run_with([faults.ok(BROKEN)], sql_candidates=0)
    assert response.status_code == 422
    assert response.json()["error"]["check"]["repair"] is None
    assert len(sent) == 1


async def test_a_streamed_repair_delivers_the_same_text_as_the_plain_one() -> None:
    winner = "SELECT count(*) FROM singer"
    with fake_upstream(faults.ok(BROKEN)) as upstream:
        upstream.faults = [faults.ok(BROKEN), faults.candidates([winner, winner]),
                           faults.stream_ok([BROKEN]), faults.candidates([winner, winner])]
        app = create_app(make_settings(upstream_url=upstream.base_url, cache_enabled=False, sql_candidates=2))
        async with asgi_client(app) as client:
            body = {"prompt": "How many singers?", "schema": COUNT}
            plain = await client.post("/v1/completions", json=body)
            streamed = await client.post("/v1/completions", json={**body, "stream": True})
    events = sse_events(streamed.text)
    assert plain.json()["choices"][0]["text"] == streamed_text(events) == winner
    assert events[-1]["sql"]["repair"]["won"] is True


# ---- the analyst's dialect ---------------------------------------------------------------------------------------

LIMITED = "SELECT Name FROM singer LIMIT 5"


@pytest.mark.parametrize(("dialect", "expected"), [
    ("tsql", "SELECT TOP 5 Name FROM singer"),
    ("postgres", "SELECT Name FROM singer LIMIT 5"),
    ("sqlite", LIMITED),
])
async def test_the_answer_comes_back_in_the_requested_dialect_on_every_path(dialect: str, expected: str) -> None:
    with fake_upstream(faults.ok(LIMITED)) as upstream:
        upstream.faults = [faults.ok(LIMITED), faults.stream_ok([LIMITED[:12], LIMITED[12:]]), faults.ok(LIMITED)]
        app = create_app(make_settings(upstream_url=upstream.base_url, cache_enabled=False))
        async with asgi_client(app) as client:
            body = {"prompt": "Five singers' names", "schema": SINGER, "dialect": dialect}
            plain = await client.post("/v1/completions", json=body)
            streamed = await client.post("/v1/completions", json={**body, "stream": True})
            sql = await client.post("/v1/sql", json={"question": "Five singers' names", "schema": SINGER,
                                                     "dialect": dialect})
    events = sse_events(streamed.text)
    assert plain.json()["choices"][0]["text"] == streamed_text(events) == sql.json()["sql"] == expected
    check = plain.json()["sql"]
    assert (check["dialect"], check["source_dialect"]) == (dialect, "sqlite")
    assert sql.json()["check"]["source_dialect"] == "sqlite"


async def test_sql_that_cannot_be_written_faithfully_in_the_dialect_is_refused_not_half_translated() -> None:
    julian = "SELECT julianday('now') - julianday(Name) FROM singer"
    with fake_upstream(faults.ok(julian)) as upstream:
        app = create_app(make_settings(upstream_url=upstream.base_url, cache_enabled=False, sql_candidates=0))
        async with asgi_client(app) as client:
            response = await client.post("/v1/sql", json={"question": "Days?", "schema": SINGER,
                                                          "dialect": "postgres"})
    assert response.status_code == 422
    error = response.json()["error"]
    assert error["code"] == "untranslatable_sql"
    assert error["check"]["query"] == julian  # the model's SQLite, for debugging; never as the answer


# ---- the `always` policy: every answer is voted on, agreement is its confidence ---------------------------------

async def run_always(greedy: str, samples: list[str], **settings: Any) -> tuple[httpx.Response, list[bytes]]:
    with fake_upstream(faults.ok(greedy)) as upstream:
        upstream.faults = [faults.sampled_or_greedy(upstream.requests, sampled=faults.candidates(samples),
                                                    greedy=faults.ok(greedy))]
        app = create_app(make_settings(upstream_url=upstream.base_url, cache_enabled=False,
                                       sql_candidates=len(samples), sql_candidates_policy="always", **settings))
        async with asgi_client(app) as client:
            response = await client.post("/v1/sql", json=sql_request())
        return response, list(upstream.requests)


async def test_with_the_always_policy_a_passing_greedy_answer_is_voted_on_and_carries_its_agreement() -> None:
    count = "SELECT count(*) FROM singer"
    response, sent = await run_always(count, [count, "select COUNT(*) from singer", "SELECT count(Name) FROM singer",
                                              BROKEN])
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["sql"] == count
    assert body["check"]["agreement"] == {"candidates": 5, "agreeing": 3, "ratio": 0.6}
    assert body["check"]["repair"] is None  # the greedy answer stood
    assert sorted("n" in orjson.loads(request) for request in sent) == [False, True]


async def test_with_the_always_policy_samples_that_agree_outvote_the_greedy_answer() -> None:
    count = "SELECT count(*) FROM singer"
    response, _ = await run_always("SELECT count(Name) FROM singer", [count, count, "SELECT Name FROM singer"])
    body = response.json()
    assert body["sql"] == count
    assert body["check"]["agreement"] == {"candidates": 4, "agreeing": 2, "ratio": 0.5}
    assert body["check"]["repair"]["reason"] == "outvoted" and body["check"]["repair"]["won"] is True


async def test_below_the_minimum_agreement_the_answer_is_refused_with_the_competing_queries() -> None:
    count = "SELECT count(*) FROM singer"
    response, _ = await run_always(count, [count, "SELECT count(Name) FROM singer", "SELECT Name FROM singer"],
                                   sql_min_agreement=0.75)
    assert response.status_code == 422
    error = response.json()["error"]
    assert error["code"] == "low_confidence"
    assert "2 of 4 candidate queries agree" in error["message"]
    assert [entry["votes"] for entry in error["check"]["competing"]] == [2, 1, 1]
    assert error["check"]["competing"][0]["query"] == count


async def test_the_on_failure_policy_leaves_a_passing_greedy_answer_alone() -> None:
    response, sent = await run_with([faults.ok("SELECT count(*) FROM singer")], sql_candidates=4)
    assert response.status_code == 200
    assert response.json()["check"]["agreement"] is None
    assert len(sent) == 1


# ---- escalation: a second model, asked only when too few candidates agree ---------------------------------------

async def run_escalated(primary: tuple[str, list[str]], second: tuple[str, list[str]] | None,
                        **settings: Any) -> tuple[httpx.Response, list[bytes], list[bytes]]:
    with fake_upstream(faults.ok(primary[0])) as first, fake_upstream(faults.ok("x")) as other:
        first.faults = [faults.sampled_or_greedy(first.requests, sampled=faults.candidates(primary[1]),
                                                 greedy=faults.ok(primary[0]))]
        other.faults = ([faults.sampled_or_greedy(other.requests, sampled=faults.candidates(second[1]),
                                                  greedy=faults.ok(second[0]))] if second is not None
                        else [faults.status(503)])
        app = create_app(make_settings(
            upstream_url=first.base_url, cache_enabled=False, sql_candidates=len(primary[1]),
            sql_candidates_policy="always", sql_min_agreement=0.75, escalation_url=other.base_url,
            escalation_model="qwen2.5-7b-sql", **settings))
        async with asgi_client(app) as client:
            response = await client.post("/v1/sql", json=sql_request())
        return response, list(first.requests), list(other.requests)


COUNT_SQL = "SELECT count(*) FROM singer"
SPLIT = ["SELECT count(Name) FROM singer", "SELECT Name FROM singer", "SELECT Country FROM singer"]


async def test_too_little_agreement_asks_the_second_model_and_says_it_answered() -> None:
    agreeing = [COUNT_SQL, COUNT_SQL, "select count(*) from singer"]
    response, _, second = await run_escalated((COUNT_SQL, SPLIT), (COUNT_SQL, agreeing))
    assert response.status_code == 200, response.text
    check = response.json()["check"]
    assert response.json()["sql"] == COUNT_SQL
    assert check["answered_by"] == "qwen2.5-7b-sql"
    assert check["agreement"] == {"candidates": 4, "agreeing": 4, "ratio": 1.0}
    asked = [orjson.loads(request) for request in second]
    assert {body["model"] for body in asked} == {"qwen2.5-7b-sql"} and sorted("n" in body for body in asked) == [
        False, True]


async def test_enough_agreement_never_troubles_the_second_model() -> None:
    response, _, second = await run_escalated((COUNT_SQL, [COUNT_SQL] * 3), (COUNT_SQL, [COUNT_SQL]))
    assert response.status_code == 200
    assert response.json()["check"]["answered_by"] == "qwen2.5-1.5b-sql"
    assert second == []


async def test_a_second_model_that_fails_leaves_the_low_confidence_refusal() -> None:
    response, _, second = await run_escalated((COUNT_SQL, SPLIT), None)
    assert response.status_code == 422
    assert response.json()["error"]["code"] == "low_confidence"
    assert second  # it was asked


@pytest.mark.parametrize(("settings", "message"), [
    ({"escalation_url": "http://127.0.0.1:9", "sql_min_agreement": 0.5}, "without SQLGATE_ESCALATION_MODEL"),
    ({"escalation_url": "http://127.0.0.1:9", "escalation_model": "m"}, "set that too"),
    ({"escalation_url": "http://127.0.0.1:9", "escalation_model": "m", "sql_min_agreement": 0.5,
      "sql_candidates": 0}, "needs the candidate step"),
])
def test_an_escalation_that_could_never_be_asked_stops_start_up(settings: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        make_settings(**settings)


async def test_a_schema_with_no_table_to_build_still_gets_a_vote_never_a_500() -> None:
    # Nothing to synthesize databases from: agreement falls back to the SQL's canonical form.
    with fake_upstream(faults.ok("SELECT 1")) as upstream:
        upstream.faults = [faults.sampled_or_greedy(upstream.requests, sampled=faults.candidates(["SELECT 1"] * 2),
                                                    greedy=faults.ok("SELECT 1"))]
        app = create_app(make_settings(upstream_url=upstream.base_url, cache_enabled=False, sql_candidates=2,
                                       sql_candidates_policy="always", sql_grounding="advisory"))
        async with asgi_client(app) as client:
            response = await client.post("/v1/sql", json={"question": "one?", "schema": "memo(id, title)"})
    assert response.status_code in (200, 422), response.text
    check = response.json()["check"] if response.status_code == 200 else response.json()["error"]["check"]
    assert check["vote"]["method"] == "canonical" and check["vote"]["instances"] == 0
