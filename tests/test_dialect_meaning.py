"""Issue 22: an answer in the analyst's dialect returns SQLite's rows on the real engine, or is refused naming what
can't be kept. Each case goes through the gateway (`/v1/sql`, the model's SQLite from a fake upstream), then the
returned query runs on a real PostgreSQL, MariaDB (throwaway servers) or DuckDB (in process) holding the same rows
as SQLite; the results are compared, not the text.

The analyst's database is built here by hand, independently of the gateway: names quoted exactly where the schema
quotes them, types by SQLite's affinity (INTEGER -> BIGINT, REAL -> double precision, TEXT -> text).
"""

from __future__ import annotations

import math
import sqlite3
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import duckdb
import pytest

from benchmarks.dialect_data import comparable
from benchmarks.engine_servers import ThrowawayMariaDB, ThrowawayPostgres
from gateway.app import create_app
from tests import faults
from tests.conftest import asgi_client, make_settings
from tests.servers import fake_upstream

pytestmark = pytest.mark.slow

# (table as written in the schema, its columns as written with their SQLite type, its rows)
USERS = ('"Users"', [('"Id"', "INTEGER"), ('"FirstName"', "TEXT")], [(1, "Ann"), (2, "bob"), (3, None)])
T = ("t", [("a", "INTEGER"), ("b", "INTEGER"), ("price", "REAL"), ("name", "TEXT"), ("day", "TEXT")], [
    (7, 2, 2.7, "abcdef", "2021-03-04"),
    (3, None, 2.75, "Alpha", "2020-12-31"),
    (-7, 2, -2.5, "alpha", None),
    (0, 0, 0.125, "", "2021-01-15"),
    (None, 1, None, None, "2019-07-01"),
])
TABLES = (USERS, T)
SCHEMA = "; ".join(f"CREATE TABLE {name} ({', '.join(f'{c} {k}' for c, k in columns)})" for name, columns, _ in TABLES)

# The issue's table: each must come back with SQLite's rows (not a refusal) on every engine.
ISSUE_ROWS = {
    "quoted_names": 'SELECT "FirstName" FROM "Users" WHERE "Id" = 1',
    "quoted_names_spelled_otherwise": "SELECT firstname FROM users WHERE id = 2",
    "substr_negative_start": "SELECT substr(name, -3), substr(name, -3, 2) FROM t",
    "scalar_max_min_with_null": "SELECT max(a, b), min(a, b) FROM t",
    "cast_truncates": "SELECT CAST(price AS INT), CAST(price AS INTEGER) FROM t",
    "integer_division": "SELECT a / b FROM t",
    "comparison_as_number": "SELECT sum(a > 2) FROM t",
    "value_as_condition": "SELECT count(*) FROM t WHERE a",
    "round_on_real": "SELECT round(price, 1), round(price) FROM t",
}
# The issue's list: SQLite's rows, or a 422 untranslatable_sql naming the construct.
LIST_ROWS = {
    "modulo_by_zero": "SELECT a % b FROM t",
    "concat_with_null": "SELECT name || '-' || b FROM t",
    "concat_numbers": "SELECT a || b FROM t",
    "strftime_parts": "SELECT strftime('%Y', day), strftime('%m', day) FROM t",
    "strftime_filter": "SELECT count(*) FROM t WHERE strftime('%Y', day) = '2021'",
    "limit_offset_nulls_first": "SELECT a FROM t ORDER BY a LIMIT 2 OFFSET 1",
    "limit_desc": "SELECT a FROM t ORDER BY a DESC LIMIT 2",
    "limit_comma_offset": "SELECT a FROM t ORDER BY a LIMIT 1, 2",
    "limit_minus_one": "SELECT a FROM t ORDER BY a LIMIT -1 OFFSET 3",
    "like_ignores_case": "SELECT name FROM t WHERE name LIKE 'al%'",
    "equality_keeps_case": "SELECT count(*) FROM t WHERE name = 'alpha'",
    "in_keeps_case": "SELECT count(*) FROM t WHERE name IN ('alpha', 'bravo')",
    "order_by_text_binary": "SELECT name FROM t WHERE name IS NOT NULL ORDER BY name",
    "distinct_keeps_case": "SELECT count(DISTINCT name) FROM t",
    "group_by_keeps_case": "SELECT name, count(*) FROM t GROUP BY name",
    "max_text_binary": "SELECT max(name), min(name) FROM t",
    "bare_column": 'SELECT "Id", "FirstName", count(*) FROM "Users" GROUP BY "Id"',
    "average_of_integers": "SELECT avg(b) FROM t WHERE b > 0",
    "real_division": "SELECT a * 1.0 / 3 FROM t",
    "text_compared_with_number": "SELECT count(*) FROM t WHERE day > 2020",
}
ENGINES = ("postgres", "duckdb", "mysql")


# ---- the analyst's databases --------------------------------------------------------------------------------------


def _target_name(name: str, dialect: str) -> str:
    if name.startswith('"'):
        return f"`{name[1:-1]}`" if dialect == "mysql" else name
    return name


_TYPES = {
    "postgres": {"INTEGER": "BIGINT", "REAL": "DOUBLE PRECISION", "TEXT": "TEXT"},
    "duckdb": {"INTEGER": "BIGINT", "REAL": "DOUBLE", "TEXT": "TEXT"},
    "mysql": {"INTEGER": "BIGINT", "REAL": "DOUBLE", "TEXT": "TEXT"},
}


def _fill(execute: Callable[[str, tuple[Any, ...]], None], dialect: str, marker: str) -> None:
    for name, columns, rows in TABLES:
        table = _target_name(name, dialect)
        execute(f"DROP TABLE IF EXISTS {table}", ())
        body = ", ".join(f"{_target_name(c, dialect)} {_TYPES[dialect][kind]}" for c, kind in columns)
        execute(f"CREATE TABLE {table} ({body})", ())
        for row in rows:
            execute(f"INSERT INTO {table} VALUES ({', '.join(marker for _ in row)})", row)


Runner = Callable[[str], list[tuple[Any, ...]]]


@dataclass
class Engine:
    dialect: str
    run: Runner
    settings: dict[str, str]
    close: Callable[[], None]


def _postgres_engine(server: ThrowawayPostgres) -> Engine:
    import psycopg

    connection = psycopg.connect(server.admin_url, autocommit=True)
    _fill(lambda sql, args: connection.execute(sql, args) and None, "postgres", "%s")

    def run(sql: str) -> list[tuple[Any, ...]]:
        return list(connection.execute(sql).fetchall())  # type: ignore[arg-type]

    return Engine("postgres", run, {"check_postgres_url": server.check_url}, connection.close)


def _mariadb_engine(server: ThrowawayMariaDB) -> Engine:
    import pymysql

    connection = pymysql.connect(unix_socket=str(server.socket), user="root", database="sqlgate_data",
                                 autocommit=True, charset="utf8mb4")

    def execute(sql: str, args: tuple[Any, ...]) -> None:
        with connection.cursor() as cursor:
            cursor.execute(sql, args or None)

    _fill(execute, "mysql", "%s")

    def run(sql: str) -> list[tuple[Any, ...]]:
        with connection.cursor() as cursor:
            cursor.execute(sql)
            return list(cursor.fetchall())

    return Engine("mysql", run, {"check_mysql_url": server.check_url}, connection.close)


def _duckdb_engine() -> Engine:
    connection = duckdb.connect(":memory:")
    _fill(lambda sql, args: connection.execute(sql, list(args)) and None, "duckdb", "?")
    return Engine("duckdb", lambda sql: connection.execute(sql).fetchall(), {}, connection.close)


@pytest.fixture(scope="module", params=ENGINES)
def engine(request: pytest.FixtureRequest) -> Iterator[Engine]:
    if request.param == "postgres":
        made = _postgres_engine(request.getfixturevalue("postgres"))
    elif request.param == "mysql":
        made = _mariadb_engine(request.getfixturevalue("mariadb"))
    else:
        made = _duckdb_engine()
    yield made
    made.close()


@pytest.fixture(scope="module")
def sqlite_rows() -> Iterator[Runner]:
    connection = sqlite3.connect(":memory:")
    for name, columns, rows in TABLES:
        connection.execute(f"CREATE TABLE {name} ({', '.join(f'{c} {k}' for c, k in columns)})")
        connection.executemany(f"INSERT INTO {name} VALUES ({', '.join('?' for _ in columns)})", rows)
    yield lambda sql: connection.execute(sql).fetchall()
    connection.close()


# ---- comparing results ------------------------------------------------------------------------------------------
# Rows are compared as `make dialect-engines` compares them (benchmarks/dialect_data.comparable), so the test and
# the benchmark mean the same by "the same rows".


async def _answer(sql: str, dialect: str, settings: dict[str, str]) -> tuple[int, dict[str, Any]]:
    with fake_upstream(faults.ok(sql)) as upstream:
        app = create_app(make_settings(upstream_url=upstream.base_url, cache_enabled=False, sql_candidates=0,
                                       **settings))
        async with asgi_client(app) as client:
            response = await client.post("/v1/sql", json={"question": "q", "schema": SCHEMA, "dialect": dialect})
    return response.status_code, response.json()


async def _same_rows_or_named_refusal(engine: Engine, sqlite_rows: Runner, sql: str, *, refusal_allowed: bool
                                      ) -> dict[str, Any]:
    status, body = await _answer(sql, engine.dialect, engine.settings)
    if status == 422 and refusal_allowed:
        error = body["error"]
        assert error["code"] == "untranslatable_sql", error
        assert error["message"].strip(), error  # names the construct
        return error["check"]  # type: ignore[no-any-return]
    assert status == 200, body
    ordered = "ORDER BY" in sql.upper()
    expected = comparable(sqlite_rows(sql), ordered)
    try:
        got = comparable(engine.run(body["sql"]), ordered)
    except Exception as error:  # the engine refused what the gateway returned as valid
        raise AssertionError(f"{engine.dialect} refused the gateway's answer {body['sql']!r}: {error}") from None
    assert got == expected, f"{engine.dialect}: {body['sql']!r} gave {got}, SQLite {expected}"
    assert body["check"]["target_verified"] == "engine", body["check"]
    return body["check"]  # type: ignore[no-any-return]


@pytest.mark.parametrize("case", list(ISSUE_ROWS))
async def test_the_issues_rows_return_sqlites_rows_on_the_engine(engine: Engine, sqlite_rows: Runner,
                                                                 case: str) -> None:
    await _same_rows_or_named_refusal(engine, sqlite_rows, ISSUE_ROWS[case], refusal_allowed=False)


@pytest.mark.parametrize("case", list(LIST_ROWS))
async def test_sqlites_meaning_is_kept_or_the_construct_is_named(engine: Engine, sqlite_rows: Runner,
                                                                 case: str) -> None:
    await _same_rows_or_named_refusal(engine, sqlite_rows, LIST_ROWS[case], refusal_allowed=True)


def test_the_test_data_really_exercises_the_cases() -> None:
    # NULLs, fractions, negative numbers, mixed case, an empty string, a zero divisor: each present.
    values = [value for _, _, rows in TABLES for row in rows for value in row]
    assert None in values and "" in values and 0 in values
    assert any(isinstance(v, float) and not v.is_integer() for v in values)
    assert any(isinstance(v, int | float) and v < 0 for v in values)
    assert {"Alpha", "alpha"} <= set(values)
    assert not any(isinstance(v, float) and math.isnan(v) for v in values)


@pytest.mark.parametrize("dialect", ["postgres", "duckdb"])
async def test_what_the_target_engine_refuses_is_422_untranslatable_with_the_engines_message(
        dialect: str, request: pytest.FixtureRequest) -> None:
    # SQLite lets `*` stand next to GROUP BY; no rule rewrites it, so the engine is the one that catches it.
    settings = ({"check_postgres_url": request.getfixturevalue("postgres").check_url} if dialect == "postgres"
                else {})
    status, body = await _answer("SELECT * FROM t GROUP BY a", dialect, settings)
    assert status == 422, body
    error = body["error"]
    assert error["code"] == "untranslatable_sql"
    check = error["check"]
    assert check["target_verified"] == "engine"
    assert check["target_engine"].startswith(dialect)
    assert "GROUP BY" in check["target_message"]  # the engine's own words
    assert check["problems"][0]["code"] == "target_refused"


async def test_the_mysql_check_database_sees_the_schema_as_written(mariadb: ThrowawayMariaDB) -> None:
    # MySQL on Linux finds a table only by its exact name: the check database refuses a misspelt one, which the
    # gateway never writes (it spells names as the schema does).
    from gateway.sql_check.target import TargetEngines

    engines = TargetEngines(mysql_url=mariadb.check_url)
    try:
        wrong = engines.check("SELECT `FirstName` FROM users", schema=SCHEMA, dialect="mysql")
        right = engines.check("SELECT `FirstName` FROM `Users`", schema=SCHEMA, dialect="mysql")
    finally:
        engines.close()
    assert wrong.refused is not None and "users" in wrong.refused
    assert (right.level, right.refused) == ("engine", None)
