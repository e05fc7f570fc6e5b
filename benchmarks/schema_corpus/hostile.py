"""A hostile corpus for the check: SQL that asks an engine for huge output or unbounded work, checked with
`check_sql` in every dialect and through `/v1/sql` (the model's text from an in-process fake upstream), measuring
the worst check time and the process's peak memory over its warmed-up level. Run in a fresh process, so the
peak is this corpus's:

    python -m benchmarks.schema_corpus.hostile     # one JSON object on stdout
"""

from __future__ import annotations

import asyncio
import json
import logging
import resource
import sys
import time
from typing import Any

from gateway.sql_check import SUPPORTED_DIALECTS, check_sql

SCHEMA = ("CREATE TABLE t (id int PRIMARY KEY, name text, amount numeric(10,2));\n"
          "CREATE TABLE u (id int, t_id int REFERENCES t (id), note text);")
HOSTILE = (
    "SELECT lpad('x', 2000000000, 'y')",
    "SELECT rpad(name, 2000000000, 'y') FROM t",
    "SELECT repeat(repeat('x', 30000), 30000)",
    "SELECT repeat('x', 2000000000 / 2)",
    "SELECT repeat('x', power(10, 9))",
    "SELECT space(2000000000)",
    "SELECT replicate('x', 2000000000)",
    "SELECT printf('%2000000000d', 1)",
    "SELECT printf('%.*c', 2000000000, 'x')",
    "SELECT format('{:>2000000000}', 'x')",  # (MySQL's and SQL Server's FORMAT() take a number: not hostile there)
    "SELECT replace(repeat('x', 50000), 'x', repeat('y', 50000))",
    "SELECT lpad('x', (SELECT 2000000000), 'y')",
    "SELECT array_to_string(generate_series(1, 1000000), repeat('x', 1000))",
    "SELECT concat('a', repeat('b', 60000), repeat('c', 60000))",
    "WITH RECURSIVE c(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM c) SELECT count(*) FROM c",
    "SELECT count(*) FROM t AS a, t AS b, u AS c, u AS d, t AS e",
    "SELECT count(*) FROM t CROSS JOIN u CROSS JOIN t AS t2 CROSS JOIN u AS u2",
    # the longest SQL the check takes (MAX_SQL_CHARS): what parsing it costs is the check's own cost
    "SELECT id FROM t WHERE id IN (" + ", ".join(str(n) for n in range(3500)) + ") AND lpad(name, 2000000000) = ''",
)
# Not hostile in these dialects: there FORMAT() formats a number, so the text is only a value.
NOT_HOSTILE_IN = {"SELECT format('{:>2000000000}', 'x')": frozenset({"mysql", "tsql"})}
# Heavy but legitimate: answered, within the check's bounds.
BOUNDED = (
    "SELECT replace(name, 'a', 'bb') || '-' || upper(name) FROM t",
    "WITH RECURSIVE c(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM c WHERE n < 10) SELECT count(*) FROM c",
    "SELECT count(*) FROM t AS a JOIN u AS b ON b.t_id = a.id JOIN t AS c ON c.id = b.t_id JOIN u AS d "
    "ON d.t_id = c.id",
    "SELECT id FROM t WHERE id IN (" + ", ".join(str(n) for n in range(3000)) + ")",
)


def peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # kilobytes on Linux


def hostile(sql: str, dialect: str) -> bool:
    return sql in HOSTILE and dialect not in NOT_HOSTILE_IN.get(sql, frozenset())


def direct() -> list[dict[str, Any]]:
    """Each check three times, its best time kept: the check's own cost, not the busy machine's pauses."""
    rows = []
    for sql in (*HOSTILE, *BOUNDED):
        for dialect in sorted(SUPPORTED_DIALECTS):
            times = []
            for _ in range(3):
                started = time.perf_counter()
                check = check_sql(sql, schema=SCHEMA, dialect=dialect)
                times.append(time.perf_counter() - started)
            rows.append({"via": "check_sql", "dialect": dialect, "sql": sql[:80], "hostile": hostile(sql, dialect),
                         "ms": round(min(times) * 1000, 2), "error_code": check.error_code})
    return rows


async def routes(corpus: tuple[str, ...] = (*HOSTILE, *BOUNDED)) -> list[dict[str, Any]]:
    import httpx

    from gateway.app import create_app
    from gateway.settings import Settings

    answer = {"text": "SELECT 1"}

    async def upstream(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:  # keep-alive: one canned completion per request
            try:
                head = await reader.readuntil(b"\r\n\r\n")
            except (asyncio.IncompleteReadError, ConnectionError):
                break
            length = next((int(line.split(b":")[1]) for line in head.split(b"\r\n")
                           if line.lower().startswith(b"content-length")), 0)
            await reader.readexactly(length)
            body = json.dumps({"id": "x", "object": "text_completion", "created": 0, "model": "m",
                               "choices": [{"index": 0, "text": answer["text"], "finish_reason": "stop"}],
                               "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2}}).encode()
            writer.write(b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: "
                         + str(len(body)).encode() + b"\r\n\r\n" + body)
            await writer.drain()
        writer.close()

    server = await asyncio.start_server(upstream, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    settings = Settings(api_keys=("sk-hostile-corpus-0000000000",), upstream_url=f"http://127.0.0.1:{port}",
                        cache_enabled=False, sql_candidates=0, rate_limit_per_minute=0, ready_interval_s=0)
    app = create_app(settings)
    rows = []
    async with app.router.lifespan_context(app):
        client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://gateway",
                                   headers={"authorization": "Bearer sk-hostile-corpus-0000000000"})
        async with client:
            for sql in corpus:
                answer["text"] = sql
                for dialect in sorted(SUPPORTED_DIALECTS):
                    started = time.perf_counter()
                    response = await client.post("/v1/sql", json={"question": "q", "schema": SCHEMA,
                                                                  "dialect": dialect})
                    code = response.json().get("error", {}).get("code") if response.status_code != 200 else None
                    rows.append({"via": "/v1/sql", "dialect": dialect, "sql": sql[:80],
                                 "hostile": hostile(sql, "sqlite"),  # the model writes SQLite: judged there first
                                 "ms": round((time.perf_counter() - started) * 1000, 2), "status": response.status_code,
                                 "error_code": code})
    server.close()
    return rows


def measure() -> dict[str, Any]:
    logging.disable(logging.INFO)  # one log line per request would be most of what this measures
    for dialect in sorted(SUPPORTED_DIALECTS):  # warm up: imports, parsers, the schema's engines
        check_sql("SELECT name FROM t", schema=SCHEMA, dialect=dialect)
    asyncio.run(_warm_routes())
    before = peak_mb()
    rows = direct() + asyncio.run(routes())
    after = peak_mb()
    hostile = [row for row in rows if row["hostile"]]
    return {
        "worst_check_ms": max(row["ms"] for row in rows if row["via"] == "check_sql"),
        "worst_route_ms": max(row["ms"] for row in rows if row["via"] == "/v1/sql"),
        "peak_extra_mb": round(after - before, 1), "baseline_peak_mb": round(before, 1),
        "hostile_checks": len(hostile),
        "hostile_refused": sum(row["error_code"] is not None for row in hostile),
        "bounded_answered": sum(row["error_code"] is None for row in rows if not row["hostile"]),
        "bounded_checks": sum(not row["hostile"] for row in rows),
        "rows": rows,
    }


async def _warm_routes() -> None:
    # the app and its imports, not the corpus: the pipeline memoises verdicts, so a second pass would measure that
    await routes(("SELECT name FROM t WHERE id > 1",))


if __name__ == "__main__":
    json.dump(measure(), sys.stdout)
    sys.exit(0)
