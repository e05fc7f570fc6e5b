"""Exact match as the publication scored it, and the sqlglot-normalised match."""

from __future__ import annotations

import pytest

from clients.sql_match import canonical_sql, exact_match, normalise_exact, normalised_match, schema_columns

DORMS = (
    "CREATE TABLE student (StuID int, Fname text, LName text) "
    "CREATE TABLE lives_in (stuid int, dormid int) "
    "CREATE TABLE dorm (dormid int, dorm_name text)"
)
HEAD = "CREATE TABLE head (age INTEGER, name VARCHAR); CREATE TABLE department (department_id VARCHAR)"


@pytest.mark.parametrize(
    ("prediction", "reference"),
    [
        ("SELECT count(*) FROM singer", "select COUNT(*) from SINGER"),
        ("  SELECT count(*)\n\tFROM   singer ;  ", "SELECT count(*) FROM singer"),
        ("SELECT count(*) FROM singer;;", "SELECT count(*) FROM singer"),
    ],
)
def test_exact_match_ignores_case_whitespace_and_trailing_semicolons(prediction: str, reference: str) -> None:
    assert exact_match(prediction, reference)


@pytest.mark.parametrize(
    ("prediction", "reference"),
    [
        ("SELECT count(*) FROM head WHERE age>56", "SELECT count(*) FROM head WHERE age > 56"),
        ("SELECT T1.name FROM head AS T1", "SELECT name FROM head"),
        ("SELECT name FROM head WHERE name = 'Bob'", 'SELECT name FROM head WHERE name = "Bob"'),
        ("SELECT count(*) FROM singer; SELECT 1", "SELECT count(*) FROM singer"),
    ],
)
def test_exact_match_counts_every_other_difference(prediction: str, reference: str) -> None:
    assert not exact_match(prediction, reference)


def test_normalise_exact_follows_the_publication_step_by_step() -> None:
    # strip -> lower -> collapse whitespace -> strip trailing ';' -> strip: a ';' before the last space goes too.
    assert normalise_exact("  SELECT  A\nFROM t ; ") == "select a from t"
    assert normalise_exact("SELECT ';'") == "select ';'"


@pytest.mark.parametrize(
    ("prediction", "reference"),
    [
        # aliases, identifier case and whitespace
        (
            "select fname, lname, dorm_name from student join lives_in on student.stuid = lives_in.stuid "
            "inner join dorm on lives_in.dormid = dorm.dormid;",
            "SELECT T1.Fname, T1.LName, T3.dorm_name FROM student AS T1 JOIN lives_in AS T2 "
            "ON T1.StuID = T2.stuid JOIN dorm AS T3 ON T2.dormid = T3.dormid",
        ),
        ("SELECT COUNT(*) FROM head WHERE age>56", "select count(*) from head where AGE > 56"),
        # SQLite reads a double-quoted name that is no column as a string
        ('SELECT name FROM head WHERE name = "Bob"', "SELECT T1.name FROM head AS T1 WHERE T1.Name = 'Bob'"),
        # output aliases, also when ORDER BY uses them
        ("SELECT count(*) AS total FROM head ORDER BY total", "SELECT COUNT(*) FROM head ORDER BY COUNT(*)"),
        ("SELECT name FROM head ORDER BY age ASC", "SELECT name FROM head ORDER BY age"),
        ("SELECT a.name FROM head a WHERE a.age != 3", "SELECT name FROM head WHERE age <> 3"),
    ],
)
def test_normalised_match_ignores_aliases_case_and_layout(prediction: str, reference: str) -> None:
    schema = DORMS if "student" in reference else HEAD
    assert normalised_match(prediction, reference, schema)
    assert not exact_match(prediction, reference)


@pytest.mark.parametrize(
    ("prediction", "reference"),
    [
        ("SELECT name FROM head WHERE name = 'bob'", "SELECT name FROM head WHERE name = 'Bob'"),
        ("SELECT name FROM head", "SELECT age FROM head"),
        ("SELECT count(name) FROM head", "SELECT count(*) FROM head"),
        ("SELECT name FROM head WHERE age > 56 AND name = 'x'", "SELECT name FROM head WHERE name = 'x' AND age > 56"),
        ("SELECT name FROM head LIMIT 1", "SELECT name FROM head"),
        ("SELECT DISTINCT name FROM head", "SELECT name FROM head"),
        ("SELECT name FROM head ORDER BY age DESC", "SELECT name FROM head ORDER BY age"),
        ("SELECT name FROM (", "SELECT name FROM head"),
        ("SELECT name FROM head; SELECT name FROM head", "SELECT name FROM head"),
    ],
)
def test_normalised_match_keeps_differences_that_change_the_query(prediction: str, reference: str) -> None:
    assert not normalised_match(prediction, reference, HEAD)


def test_unparsable_reference_falls_back_to_exact_match() -> None:
    reference = "SELECT name FROM head WHERE ((("
    assert normalised_match("select name from head where (((", reference, HEAD)
    assert not normalised_match("SELECT name FROM head", reference, HEAD)


def test_schema_columns_reads_tables_written_without_semicolons() -> None:
    columns = schema_columns(DORMS)
    assert set(columns) == {"student", "lives_in", "dorm"}
    assert set(columns["student"]) == {"stuid", "fname", "lname"}


def test_canonical_form_is_stable_under_its_own_output() -> None:
    columns = schema_columns(DORMS)
    once = canonical_sql("SELECT T1.Fname FROM student AS T1 WHERE T1.StuID = 3", columns)
    assert canonical_sql(once, columns) == once
