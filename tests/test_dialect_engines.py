"""The transpiled answers run on the real engines: the public benchmark's gold SQL, transpiled from SQLite, compiles
on DuckDB (in memory) and PostgreSQL (a throwaway cluster) against the row's schema for >= 99 % of the answers
that compile in SQLite. Figures: `python -m benchmarks.dialect_engines` (docs/eval.md)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from benchmarks.dialect_engines import (
    DEFAULT_DATA,
    ThrowawayPostgres,
    compile_on_duckdb,
    engine_schema,
    load_rows,
    measure,
    postgres_bin,
    throwaway_postgres,
)

pytestmark = pytest.mark.slow
SCHEMA = 'CREATE TABLE performance (Performance_ID INTEGER, Type VARCHAR, Official_ratings_(millions) INTEGER)'
JOBS = [
    (SCHEMA, "SELECT Type FROM performance"),
    (SCHEMA, 'SELECT "Official_ratings_(millions)" FROM performance'),
    (SCHEMA, "SELECT nope FROM performance"),
    (SCHEMA, "SELECT Type, Performance_ID FROM performance GROUP BY Type"),
]


@pytest.fixture(scope="module")
def postgres() -> Iterator[ThrowawayPostgres]:
    if postgres_bin() is None:
        pytest.skip("PostgreSQL's initdb is not installed (Debian: apt-get install postgresql)")
    with throwaway_postgres() as server:
        yield server


def test_schema_with_names_that_need_quotes_is_built_on_every_engine() -> None:
    assert engine_schema(SCHEMA, "postgres") == [
        'CREATE TABLE performance (Performance_ID INT, Type VARCHAR, "Official_ratings_(millions)" INT)']


def test_duckdb_compiles_good_queries_and_reports_bad_ones() -> None:
    errors = compile_on_duckdb(JOBS)
    assert errors[:2] == [None, None]
    assert errors[2] is not None and "nope" in errors[2]
    assert errors[3] is not None and "GROUP BY" in errors[3]


def test_postgres_compiles_good_queries_and_reports_bad_ones(postgres: ThrowawayPostgres) -> None:
    errors = postgres.compile(JOBS)
    assert errors[:2] == [None, None]
    assert errors[2] == 'column "nope" does not exist'
    assert errors[3] is not None and "GROUP BY" in errors[3]


@pytest.mark.skipif(not DEFAULT_DATA.exists(), reason=f"{DEFAULT_DATA} is not on this machine")
@pytest.mark.parametrize("engine", ["duckdb", "postgres"])
def test_transpiled_gold_answers_compile_on_the_engine(engine: str) -> None:
    if engine == "postgres" and postgres_bin() is None:
        pytest.skip("PostgreSQL's initdb is not installed (Debian: apt-get install postgresql)")
    figures = measure(load_rows(DEFAULT_DATA), [engine])
    result = figures["engines"][engine]
    assert figures["compile_in_sqlite"] >= 0.99 * figures["rows"]
    assert result["pass_rate"] >= 0.99, result["failures"]
