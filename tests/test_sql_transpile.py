"""The transpile step: model outputs (SQLite) x target dialects -> the expected text, each read back in the
target and passed by the guard there; refusals where a faithful translation does not exist."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import sqlglot

from gateway.sql_check import SUPPORTED_DIALECTS, check_sql
from gateway.sql_check.transpile import transpile_sql
from gateway.sql_check.transpiled import Transpiled, TranspileRefused

SINGER = ("CREATE TABLE singer (Singer_ID INTEGER, Name VARCHAR, Country VARCHAR, Age INTEGER, is_male BOOLEAN, "
          "\"desc\" VARCHAR, user VARCHAR, Joined VARCHAR)")

MUSEUM = ("CREATE TABLE museum (Museum_ID INTEGER, Name VARCHAR, Open_Year VARCHAR, Num_of_Staff INTEGER); "
          "CREATE TABLE visit (Museum_ID VARCHAR, visitor_ID VARCHAR, Num_of_Ticket INTEGER)")

# (model output, target, expected text)
TABLE = [
    # LIMIT
    ("SELECT Name FROM singer LIMIT 5", "tsql", "SELECT TOP 5 Name FROM singer"),
    ("SELECT Name FROM singer LIMIT 5", "postgres", "SELECT Name FROM singer LIMIT 5"),
    ("SELECT Name FROM singer LIMIT 5", "mysql", "SELECT Name FROM singer LIMIT 5"),
    ("SELECT Name FROM singer ORDER BY Age DESC LIMIT 1", "tsql", "SELECT TOP 1 Name FROM singer ORDER BY Age DESC"),
    ("SELECT Name FROM singer ORDER BY Age LIMIT 3 OFFSET 2", "tsql",
     "SELECT Name FROM singer ORDER BY Age OFFSET 2 ROWS FETCH FIRST 3 ROWS ONLY"),
    # SQLite puts NULLs first when ascending; PostgreSQL and DuckDB would put them last.
    ("SELECT Name FROM singer ORDER BY Age LIMIT 1", "postgres",
     "SELECT Name FROM singer ORDER BY Age NULLS FIRST LIMIT 1"),
    # || is concatenation in SQLite, logical OR in MySQL
    ("SELECT Name || ' ' || Country FROM singer", "mysql", "SELECT CONCAT(Name, ' ', Country) FROM singer"),
    ("SELECT Name || ' ' || Country FROM singer", "postgres", "SELECT Name || ' ' || Country FROM singer"),
    ("SELECT Name || ' ' || Country FROM singer", "tsql", "SELECT Name + ' ' + Country FROM singer"),
    ("SELECT Name || ' ' || Country FROM singer", "duckdb", "SELECT Name || ' ' || Country FROM singer"),
    # dates
    ("SELECT Name FROM singer WHERE strftime('%Y', Joined) = '2020'", "mysql",
     "SELECT Name FROM singer WHERE DATE_FORMAT(Joined, '%Y') = '2020'"),
    # Joined is text: what does not start like a date is NULL, as SQLite's strftime() gives (no cast error)
    ("SELECT Name FROM singer WHERE strftime('%Y', Joined) = '2020'", "postgres",
     "SELECT Name FROM singer WHERE CASE WHEN Joined ~ '^[0-9]{4}-[0-9]{2}-[0-9]{2}' THEN "
     "TO_CHAR(CAST(Joined AS TIMESTAMP), 'YYYY') END = '2020'"),
    ("SELECT Name FROM singer WHERE strftime('%Y', Joined) = '2020'", "tsql",
     "SELECT Name FROM singer WHERE FORMAT(CAST(Joined AS DATETIME2), 'yyyy') = '2020'"),
    ("SELECT Name FROM singer WHERE strftime('%Y', Joined) = '2020'", "duckdb",
     "SELECT Name FROM singer WHERE STRFTIME(TRY_CAST(Joined AS TIMESTAMP), '%Y') = '2020'"),
    # date('now') is 'YYYY-MM-DD' text in SQLite: compared with a text column, text (ordered by bytes)
    ("SELECT count(*) FROM singer WHERE Joined > date('now')", "postgres",
     "SELECT COUNT(*) FROM singer WHERE Joined COLLATE \"C\" > CAST(CURRENT_DATE AS TEXT)"),
    ("SELECT count(*) FROM singer WHERE Joined > date('now')", "tsql",
     "SELECT COUNT_BIG(*) FROM singer WHERE Joined COLLATE Latin1_General_BIN2 > "
     "CAST(CAST(GETDATE() AS DATE) AS VARCHAR(MAX))"),
    ("SELECT count(*) FROM singer WHERE Age < datetime('now')", "mysql",
     "SELECT COUNT(*) FROM singer WHERE Age < CURRENT_TIMESTAMP()"),
    ("SELECT Name FROM singer WHERE Age > date('2020-01-01')", "mysql",
     "SELECT Name FROM singer WHERE Age > CAST('2020-01-01' AS DATE)"),
    # names the target reserves are quoted (folded the way the target folds); habitual quotes are dropped
    ("SELECT desc, user FROM singer", "postgres", 'SELECT "desc", "user" FROM singer'),
    ("SELECT desc, user FROM singer", "tsql", "SELECT [desc], [user] FROM singer"),
    ("SELECT desc, user FROM singer", "mysql", "SELECT `desc`, `user` FROM singer"),
    ("SELECT desc, user FROM singer", "duckdb", 'SELECT "desc", "user" FROM singer'),
    ("SELECT desc FROM singer", "snowflake", 'SELECT "DESC" FROM singer'),
    ('SELECT "Name" FROM singer', "postgres", "SELECT Name FROM singer"),
    ("SELECT Name AS top FROM singer", "tsql", "SELECT Name AS [top] FROM singer"),
    # SQLite reads a double-quoted word that names no column as a string
    ('SELECT Name FROM singer WHERE Country = "France"', "postgres",
     "SELECT Name FROM singer WHERE Country = 'France'"),
    # ... and compares text by its bytes, where MySQL's and SQL Server's usual collations ignore case
    ('SELECT Name FROM singer WHERE Country = "France"', "mysql",
     "SELECT Name FROM singer WHERE CAST(Country AS BINARY) = 'France'"),
    ('SELECT Name FROM singer WHERE Country = "France"', "tsql",
     "SELECT Name FROM singer WHERE Country COLLATE Latin1_General_BIN2 = 'France'"),
    # booleans
    ("SELECT Name FROM singer WHERE is_male = TRUE", "tsql", "SELECT Name FROM singer WHERE is_male = 1"),
    ("SELECT Name FROM singer WHERE is_male = TRUE", "postgres", "SELECT Name FROM singer WHERE is_male = TRUE"),
    ("SELECT Age > 30 AS old FROM singer", "tsql",
     "SELECT CASE WHEN Age > 30 THEN 1 WHEN NOT (Age > 30) THEN 0 END AS old FROM singer"),
    # SQLite's LIKE ignores ASCII case
    ("SELECT Name FROM singer WHERE Name LIKE '%an%'", "postgres", "SELECT Name FROM singer WHERE Name ILIKE '%an%'"),
    ("SELECT Name FROM singer WHERE Name LIKE '%an%'", "duckdb", "SELECT Name FROM singer WHERE Name ILIKE '%an%'"),
    ("SELECT Name FROM singer WHERE Name LIKE '%an%'", "mysql",
     "SELECT Name FROM singer WHERE LOWER(Name) LIKE LOWER('%an%')"),
    ("SELECT Name FROM singer WHERE Name LIKE '%an%'", "tsql",
     "SELECT Name FROM singer WHERE LOWER(Name) LIKE LOWER('%an%')"),
    ("SELECT Name FROM singer WHERE Name NOT LIKE '%an%'", "bigquery",
     "SELECT Name FROM singer WHERE LOWER(Name) NOT LIKE LOWER('%an%')"),
    # functions with other names
    ("SELECT substr(Name, 1, 3), length(Name), ifnull(Age, 0) FROM singer", "tsql",
     "SELECT SUBSTRING(Name, 1, 3), LEN(Name), COALESCE(Age, 0) FROM singer"),
    ("SELECT group_concat(Name) FROM singer", "postgres", "SELECT STRING_AGG(Name, ',') FROM singer"),
    ("SELECT Country, count(*) FROM singer GROUP BY Country HAVING count(*) > 1", "tsql",
     "SELECT Country, COUNT_BIG(*) FROM singer GROUP BY Country, Country COLLATE Latin1_General_BIN2 "
     "HAVING COUNT_BIG(*) > 1"),
]

AS_NUMBER = ("CASE WHEN {0} ~ '^[[:space:]]*[-+]?([0-9]+[.]?[0-9]*|[.][0-9]+)([eE][-+]?[0-9]+)?[[:space:]]*$' "
             "THEN CAST({0} AS DOUBLE PRECISION) WHEN NOT {0} IS NULL THEN CAST('NaN' AS DOUBLE PRECISION) END")

# SQLite's own meanings, made explicit (against MUSEUM: Open_Year and visit.Museum_ID are text)
SEMANTICS = [
    # a number meets a TEXT column: SQLite compares text
    ("SELECT Name FROM museum WHERE Open_Year < 2009", "postgres",
     "SELECT Name FROM museum WHERE Open_Year COLLATE \"C\" < '2009'"),
    ("SELECT count(*) FROM museum WHERE Open_Year BETWEEN 2000 AND 2010", "duckdb",
     "SELECT COUNT(*) FROM museum WHERE Open_Year BETWEEN '2000' AND '2010'"),
    ("SELECT Name FROM museum WHERE Open_Year IN (2000, -1)", "mysql",
     "SELECT Name FROM museum WHERE Open_Year IN ('2000', '-1')"),
    # a TEXT column meets an INTEGER one: SQLite reads text that looks like a number as one, other text never
    # equals a number and sorts above them all (NaN does both; no cast error, and NOT IN does not turn NULL)
    ("SELECT T1.Name FROM museum AS T1 JOIN visit AS T2 ON T1.Museum_ID = T2.Museum_ID", "postgres",
     f"SELECT T1.Name FROM museum AS T1 JOIN visit AS T2 ON T1.Museum_ID = {AS_NUMBER.format('T2.Museum_ID')}"),
    ("SELECT T1.Name FROM museum AS T1 JOIN visit AS T2 ON T1.Museum_ID = T2.Museum_ID", "duckdb",
     "SELECT T1.Name FROM museum AS T1 JOIN visit AS T2 ON T1.Museum_ID = CASE WHEN NOT TRY_CAST(T2.Museum_ID AS "
     "DOUBLE) IS NULL THEN TRY_CAST(T2.Museum_ID AS DOUBLE) WHEN NOT T2.Museum_ID IS NULL THEN CAST('NaN' AS DOUBLE) "
     "END"),
    ("SELECT T1.Name FROM museum AS T1 JOIN visit AS T2 ON T1.Museum_ID = T2.Museum_ID", "mysql",
     "SELECT T1.Name FROM museum AS T1 JOIN visit AS T2 ON "
     "CAST(CAST(T1.Museum_ID AS CHAR) AS BINARY) = T2.Museum_ID"),
    ("SELECT Name FROM museum WHERE Museum_ID IN (SELECT Museum_ID FROM visit)", "postgres",
     f"SELECT Name FROM museum WHERE Museum_ID IN (SELECT {AS_NUMBER.format('Museum_ID')} FROM visit)"),
    # bare columns: a value of some row of the group
    ("SELECT T1.Name, count(*) FROM museum AS T1 JOIN visit AS T2 ON T1.Museum_ID = T2.Museum_ID "
     "GROUP BY T1.Museum_ID", "postgres",
     "SELECT MIN(T1.Name) AS Name, COUNT(*) FROM museum AS T1 JOIN visit AS T2 "
     f"ON T1.Museum_ID = {AS_NUMBER.format('T2.Museum_ID')} GROUP BY T1.Museum_ID"),
    # MariaDB has no ANY_VALUE; MIN is a value of some row all the same
    ("SELECT Name, count(*) FROM museum", "mysql", "SELECT MIN(Name) AS Name, COUNT(*) FROM museum"),
    ("SELECT Name, count(*) FROM museum GROUP BY Open_Year", "tsql",
     "SELECT MIN(Name) AS Name, COUNT_BIG(*) FROM museum GROUP BY Open_Year, Open_Year COLLATE Latin1_General_BIN2"),
    # DISTINCT ordered by a column it does not select
    ("SELECT DISTINCT Name FROM museum ORDER BY Num_of_Staff", "postgres",
     "SELECT Name FROM museum GROUP BY Name ORDER BY MIN(Num_of_Staff) NULLS FIRST"),
    ("SELECT DISTINCT Name FROM museum ORDER BY Name", "postgres",
     "SELECT DISTINCT Name COLLATE \"C\" AS Name FROM museum ORDER BY Name NULLS FIRST"),
]


def _offered(target: str) -> None:
    if target not in SUPPORTED_DIALECTS:
        pytest.skip(f"{target} is not among SUPPORTED_DIALECTS")


@pytest.mark.parametrize(("sql", "target", "expected"), TABLE)
def test_model_output_is_written_in_the_target_dialect(sql: str, target: str, expected: str) -> None:
    _offered(target)
    result = transpile_sql(sql, target=target, schema=SINGER)
    assert result == Transpiled(text=expected, source_dialect="sqlite", dialect=target)
    assert len(sqlglot.parse(result.text, read=target)) == 1
    check = check_sql(result.text, schema=SINGER, dialect=target)
    assert check.valid, check.problems


@pytest.mark.parametrize(("sql", "target", "expected"), SEMANTICS)
def test_sqlite_meaning_is_kept_in_the_target_dialect(sql: str, target: str, expected: str) -> None:
    result = transpile_sql(sql, target=target, schema=MUSEUM)
    assert result.text == expected
    assert len(sqlglot.parse(result.text, read=target)) == 1
    assert check_sql(result.text, schema=MUSEUM, dialect=target).valid


def test_bare_column_next_to_one_min_or_max_is_refused() -> None:
    # SQLite takes Name from the row holding the maximum; ANY_VALUE/MIN would answer something else.
    with pytest.raises(TranspileRefused, match="row holding the minimum or maximum"):
        transpile_sql("SELECT Name, max(Num_of_Staff) FROM museum", target="postgres", schema=MUSEUM)


@pytest.mark.parametrize("text", ["SELECT  name FROM singer  limit 5 -- top five\n", 'select "Name" from singer;'])
def test_same_dialect_returns_the_text_unchanged(text: str) -> None:
    assert transpile_sql(text, target="sqlite") == Transpiled(text=text, source_dialect="sqlite", dialect="sqlite")
    assert transpile_sql(text, target=" SQLite ").text == text


def test_double_quoted_names_stay_names_without_a_schema() -> None:
    result = transpile_sql('SELECT Name FROM singer WHERE Country = "France"', target="postgres")
    assert result.text == "SELECT Name FROM singer WHERE Country = France"


def test_double_quoted_column_of_the_schema_stays_a_column() -> None:
    result = transpile_sql('SELECT "Name" FROM singer WHERE "Country" = "France"', target="postgres", schema=SINGER)
    assert result.text == "SELECT Name FROM singer WHERE Country = 'France'"


def test_names_with_odd_characters_keep_their_quotes() -> None:
    schema = 'CREATE TABLE tv (id INTEGER, "18_49_Rating_Share" VARCHAR)'
    result = transpile_sql('SELECT "18_49_Rating_Share" FROM tv', target="tsql", schema=schema)
    assert result.text == "SELECT [18_49_Rating_Share] FROM tv"


@pytest.mark.parametrize(
    ("sql", "target", "reason"),
    [
        ("SELECT julianday('now') - julianday(Joined) FROM singer", "postgres", "JULIANDAY() has no known"),
        ("SELECT date(Joined, '+1 day') FROM singer", "mysql", "DATE() has no known"),
        ("SELECT Name FROM singer WHERE Name GLOB 'A*'", "postgres", "GLOB has no equivalent"),
        ("SELECT typeof(Age) FROM singer", "tsql", "TYPEOF has no equivalent"),
        ("SELECT 1; SELECT 2", "postgres", "Only one SQL statement"),
        ("SELECT FROM WHERE", "postgres", "could not be parsed"),
        ("SELECT " + "(" * 40 + "1" + ")" * 40, "postgres", "nested too deeply"),
        ("SELECT 1", "klingon", "'klingon' is not offered"),
        # issue 22: what can't keep SQLite's meaning is refused, naming the construct
        ("SELECT substr(Name, Age) FROM singer", "postgres", "substr() with a computed start"),
        ("SELECT substr(Name, 2, Age) FROM singer", "mysql", "substr() with a computed length"),
        ("SELECT CAST(Name AS INT) FROM singer", "postgres", "casts Name to a number"),
        ("SELECT count(*) FROM singer WHERE Name", "duckdb", "Name (text) as a condition"),
        ("SELECT Name FROM singer WHERE Name LIKE 'a\\_%'", "mysql", "LIKE pattern with a backslash"),
        ("SELECT strftime('%w', Joined) FROM singer", "postgres", "format %w has no equivalent"),
        ("SELECT Name, max(Age) FROM singer", "mysql", "row holding the minimum or maximum"),
    ],
)
def test_untranslatable_sql_is_refused_with_a_reason(sql: str, target: str, reason: str) -> None:
    with pytest.raises(TranspileRefused) as refused:
        transpile_sql(sql, target=target, schema=SINGER)
    assert reason in refused.value.reason
    assert refused.value.code == "untranslatable_sql"


def test_unknown_source_dialect_is_refused() -> None:
    with pytest.raises(TranspileRefused, match="not offered"):
        transpile_sql("SELECT 1", source="cobol", target="postgres")


BENIGN = Path(__file__).parent / "corpus" / "benign.jsonl"


@pytest.mark.parametrize("target", ["postgres", "mysql", "tsql", "duckdb"])
def test_benign_sqlite_corpus_transpiles_to_sql_the_guard_accepts_there(target: str) -> None:
    # What the pipeline promises: a refusal with a reason, or text that passes the guard in the target.
    rows = [json.loads(line) for line in BENIGN.read_text(encoding="utf-8").splitlines() if line.strip()]
    rows = [row for row in rows if row["dialect"] == "sqlite"]
    refused, rejected_by_guard = [], []
    for row in rows:
        try:
            text = transpile_sql(row["sql"], target=target, schema=row.get("schema")).text
        except TranspileRefused as refusal:
            refused.append((row["sql"], refusal.reason))
            continue
        if not check_sql(text, schema=row.get("schema"), dialect=target).valid:
            rejected_by_guard.append((row["sql"], text))
    assert rejected_by_guard == []
    # julianday(), date(x, '-1 year') and GLOB have no faithful equivalent; nothing else is refused.
    assert len(refused) <= 3, refused
    assert len(rows) >= 90
