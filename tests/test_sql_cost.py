"""The cost guard (gateway/sql_check/cost.py) and the bounded engines: SQL that only asks for huge output or
unbounded work is refused as expensive_sql before any engine sees it, in every dialect; the same shapes at sane
sizes pass; `expensive="allow"` answers with a warning. A hostile corpus, run in a fresh process, shows every
hostile query refused and the process's peak memory within its bound (docs/sql-guard.md, "Cost")."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from gateway.sql_check import SUPPORTED_DIALECTS, check_sql

SCHEMA = "CREATE TABLE t (id int, name text); CREATE TABLE u (id int, t_id int)"


@pytest.mark.parametrize("sql", [
    "SELECT lpad(name, 2000000000, '0') FROM t",  # a column padded to a constant length: huge on every row
    "SELECT repeat('x', 1000 * 1000 * 1000)",
    "SELECT space(2000000000)",
    "SELECT lpad('x', (SELECT 2000000000), 'y')",  # a length the check can't evaluate, yet constant
    "WITH RECURSIVE c(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM c) SELECT n FROM c",
    "SELECT * FROM t AS a CROSS JOIN u AS b CROSS JOIN t AS c CROSS JOIN u AS d",
])
@pytest.mark.parametrize("dialect", sorted(SUPPORTED_DIALECTS))
def test_only_asking_for_huge_output_or_unbounded_work_is_expensive(sql: str, dialect: str) -> None:
    check = check_sql(sql, schema=SCHEMA, dialect=dialect)
    assert check.error_code == "expensive_sql", check.problems
    assert check.problems[0].code == "expensive" and check.compiled is None


@pytest.mark.parametrize("sql", [
    "SELECT lpad(name, 10, '0') FROM t",
    "SELECT repeat('-', id) FROM t",  # a length from the data: nothing is folded against empty tables
    "WITH RECURSIVE c(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM c WHERE n < 10) SELECT n FROM c",
    "SELECT count(*) FROM t AS a JOIN u AS b ON b.t_id = a.id JOIN t AS c ON c.id = b.t_id JOIN u AS d "
    "ON d.t_id = c.id",
    "SELECT count(*) FROM t AS a, u AS b, t AS c, u AS d WHERE b.t_id = a.id AND c.id = b.t_id AND d.t_id = c.id",
])
def test_the_same_shapes_at_sane_sizes_pass_the_cost_guard(sql: str) -> None:
    check = check_sql(sql, schema=SCHEMA, dialect="postgres")
    assert "expensive" not in [problem.code for problem in check.problems], check.problems


def test_allowing_expensive_sql_answers_it_with_a_warning_and_still_bounds_the_engines() -> None:
    check = check_sql("SELECT repeat(name, 200000) FROM t", schema=SCHEMA, dialect="duckdb", expensive="allow")
    assert check.valid and [problem.code for problem in check.problems] == ["expensive_allowed"]


@pytest.mark.slow
def test_a_hostile_corpus_is_refused_everywhere_within_the_memory_bound() -> None:
    done = subprocess.run([sys.executable, "-m", "benchmarks.schema_corpus.hostile"], capture_output=True,
                          text=True, check=True, timeout=600)
    result = json.loads(done.stdout)
    assert result["hostile_refused"] == result["hostile_checks"] > 100  # check_sql in every dialect + /v1/sql
    assert {row["via"] for row in result["rows"]} == {"check_sql", "/v1/sql"}
    assert result["bounded_answered"] == result["bounded_checks"]
    assert result["peak_extra_mb"] <= 64  # memory, not time: make schemas reports the times
