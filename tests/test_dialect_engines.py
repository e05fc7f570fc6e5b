"""`make dialect-engines` compares results, not compilation: the same synthesized rows in SQLite, DuckDB,
PostgreSQL and MariaDB; an answer whose meaning changed is counted `different`, one the engine raises on
`target_error`; and on a sample of the public rows the gateway's dialect step meets the issue's target on every
engine (the whole file: `python -m benchmarks.dialect_engines`, docs/eval.md)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from benchmarks.dialect_data import comparable, instances
from benchmarks.dialect_engines import DEFAULT_ANSWERS, DEFAULT_DATA, Query, load_queries, measure, summarize
from benchmarks.dialect_runners import Engines
from benchmarks.engine_servers import ThrowawayMariaDB, ThrowawayPostgres
from gateway.pipeline.verdict import CheckOptions
from gateway.sql_check import SqlPolicy
from gateway.sql_check.target import TargetEngines

pytestmark = pytest.mark.slow
SCHEMA = ('CREATE TABLE performance (Performance_ID INTEGER, Type VARCHAR, Official_ratings_(millions) INTEGER, '
          'Share REAL); CREATE TABLE "Crew" ("Crew_ID" INTEGER, "Performance_ID" INTEGER, "Name" TEXT)')


@pytest.fixture(scope="module")
def engines(postgres: ThrowawayPostgres, mariadb: ThrowawayMariaDB) -> Iterator[tuple[Engines, TargetEngines]]:
    data = Engines(postgres.admin_url, str(mariadb.socket))
    targets = TargetEngines(postgres_url=postgres.check_url, mysql_url=mariadb.check_url, timeout_s=5.0)
    yield data, targets
    data.close()
    targets.close()


def test_every_engine_holds_the_same_rows(engines: tuple[Engines, TargetEngines]) -> None:
    data, _ = engines
    built = instances(SCHEMA, "Which crews worked on performances of type 'Opera'?", [
        "SELECT Name FROM Crew WHERE Performance_ID IN (SELECT Performance_ID FROM performance WHERE Type = 'Opera')"])
    assert len(built) == 4  # synth's three and the case-variant one
    reads = {"sqlite": 'SELECT * FROM performance, "Crew"', "duckdb": 'SELECT * FROM performance, "Crew"',
             "postgres": 'SELECT * FROM performance, "Crew"', "mysql": "SELECT * FROM performance, Crew"}
    for number, instance in enumerate(built):
        seen = {}
        for dialect, sql in reads.items():
            with data.session(dialect, instance, SCHEMA, f"same_{number}") as session:
                seen[dialect] = comparable(session.run(sql), ordered=False)
        assert seen["sqlite"], "the instance holds rows"
        assert seen["duckdb"] == seen["postgres"] == seen["mysql"] == seen["sqlite"]
    texts = [value for instance in built for table in instance for row in table.rows for value in row
             if isinstance(value, str)]
    assert "" in texts and any(text.swapcase() in texts and text.swapcase() != text for text in texts)


def test_a_translation_that_changes_the_rows_is_counted_different(engines: tuple[Engines, TargetEngines]) -> None:
    data, targets = engines
    # Integer division: plain sqlglot keeps `a / b`, which DuckDB and MySQL compute as a fraction.
    schema = "CREATE TABLE t (id INTEGER, a INTEGER, b INTEGER)"
    rows = [[Query(0, "gold", "SELECT a / b FROM t WHERE b <> 0", schema, "a over b where b is not 0")]]
    records = measure(rows, ["duckdb", "mysql"], CheckOptions(policy=SqlPolicy.READ_ONLY, engines=targets), data,
                      baseline=True)
    for dialect in ("duckdb", "mysql"):
        assert summarize(records, dialect, "sqlglot_alone")["different"] == 1
        gateway = summarize(records, dialect)
        assert (gateway["same"], gateway["target_verified"]) == (1, {"engine": 1})


@pytest.mark.skipif(not DEFAULT_DATA.exists(), reason=f"{DEFAULT_DATA} is not on this machine")
def test_on_a_sample_of_the_public_rows_every_answer_returns_sqlites_rows(
        engines: tuple[Engines, TargetEngines]) -> None:
    data, targets = engines
    rows = load_queries(DEFAULT_DATA, DEFAULT_ANSWERS)[::25]
    records = measure(rows, ["postgres", "duckdb", "mysql"], CheckOptions(policy=SqlPolicy.READ_ONLY,
                                                                          engines=targets), data)
    for dialect in ("postgres", "duckdb", "mysql"):
        figures = summarize(records, dialect)
        assert figures["answers"] >= 0.95 * figures["tried"], figures
        assert figures["target_errors"] == 0, [r for r in records if r["outcome"]["kind"] == "target_error"]
        assert figures["same_result"] >= 0.99, [r for r in records if r["outcome"]["kind"] == "different"]
        assert figures["target_verified"] == {"engine": figures["answers"]}
