"""The SQL guard: policy branches, problem codes, grounding, and the text helpers around it."""

from __future__ import annotations

import json

import pytest

import gateway.schema_model.finder as finder_module
import gateway.schema_model.reader as reader_module
import gateway.sql_check.check as sql_check_module
import gateway.sql_check.parsing as parsing_module
from gateway.sql_check import (
    MAX_PAREN_DEPTH,
    MAX_SQL_CHARS,
    SUPPORTED_DIALECTS,
    Problem,
    SqlCheck,
    SqlGrounding,
    SqlPolicy,
    check_sql,
    create_table_statements,
    extract_sql,
    find_create_tables,
    parse_schema,
    read_schema,
)

SINGER = "CREATE TABLE singer (Singer_ID int, Name text, Country text, Song_Name text)"
EMPLOYEE = "CREATE TABLE employee (Employee_ID int, Name text, Department text, Salary real)"
DORMS = ("CREATE TABLE student (StuID int, Fname text, LName text) CREATE TABLE lives_in (stuid int, dormid int) "
         "CREATE TABLE dorm (dormid int, dorm_name text)")
SEED_EXAMPLES = [
    ("SELECT count(*) FROM singer", SINGER, ("singer",), ()),
    ("SELECT * FROM employee WHERE Department = 'Engineering' AND Salary > 80000", EMPLOYEE, ("employee",),
     ("Department", "Salary")),
    ("SELECT T1.Fname, T1.LName, T3.dorm_name FROM student AS T1 JOIN lives_in AS T2 ON T1.StuID = T2.stuid "
     "JOIN dorm AS T3 ON T2.dormid = T3.dormid", DORMS, ("student", "lives_in", "dorm"),
     ("Fname", "LName", "dorm_name", "StuID", "dormid")),
]


def codes(check: SqlCheck) -> list[str]:
    return [problem.code for problem in check.problems]


# --- the seed's examples --------------------------------------------------------------------------------------


@pytest.mark.parametrize(("sql", "schema", "tables", "columns"), SEED_EXAMPLES)
def test_seed_examples_are_valid_read_only_and_fully_grounded(
    sql: str, schema: str, tables: tuple[str, ...], columns: tuple[str, ...]
) -> None:
    check = check_sql(sql, schema=schema)
    assert check.valid and check.error_code is None
    assert check.read_only and check.statement_type == "select"
    assert check.tables == tables
    assert check.columns == columns
    assert check.unknown_tables == () and check.unknown_columns == () and check.problems == ()
    assert check.dialect == "sqlite"


def test_as_dict_has_the_contract_shape_and_is_json() -> None:
    check = check_sql("SELECT T1.nope FROM student AS T1", schema=DORMS, grounding="advisory")
    shape = check.as_dict()
    assert set(shape) == {"valid", "statement_type", "read_only", "tables", "columns", "unknown_tables",
                          "unknown_columns", "problems", "dialect", "compiled", "compile_message", "verified",
                          "verified_reason", "error_code"}
    assert json.loads(json.dumps(shape)) == shape
    # Advisory grounding: reported, not refused, and not compiled (the schema is taken to be partial).
    assert shape["valid"] is True and shape["error_code"] is None and shape["compiled"] is None
    assert shape["unknown_columns"] == ["nope"]
    assert shape["problems"] == [{"code": "unknown_column",
                                  "message": "Column 'nope' is not in table 'student' (alias T1)."}]
    strict = check_sql("SELECT T1.nope FROM student AS T1", schema=DORMS).as_dict()
    assert strict["valid"] is False and strict["error_code"] == "ungrounded_sql"
    assert strict["compiled"] is False
    assert [p["code"] for p in strict["problems"]] == ["unknown_column", "does_not_compile"]


# --- one statement ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("sql", ["", "   \n\t", ";", ";;", "-- only a comment", "/* nothing */ ;"])
def test_no_statement_is_invalid_and_empty(sql: str) -> None:
    check = check_sql(sql, schema=None)
    assert not check.valid and check.error_code == "invalid_sql"
    assert codes(check) == ["empty"]


@pytest.mark.parametrize("sql", ["SELECT 1; DROP TABLE t", "SELECT 1; SELECT 2", "SELECT 1;\nDELETE FROM t;",
                                 "SELECT 1 -- x\n; DROP TABLE t"])
def test_two_statements_are_unsafe(sql: str) -> None:
    check = check_sql(sql, schema=None)
    assert check.error_code == "unsafe_sql"
    assert codes(check) == ["multiple_statements"]
    assert "found 2" in check.problems[0].message


@pytest.mark.parametrize("sql", ["SELECT 1;", "SELECT 1 ;  ", "SELECT 1; -- trailing comment", "SELECT 1;;"])
def test_trailing_semicolons_and_comments_are_one_statement(sql: str) -> None:
    assert check_sql(sql, schema=None).valid


def test_a_semicolon_inside_a_string_or_comment_is_not_a_second_statement() -> None:
    assert check_sql("SELECT 'a; DROP TABLE t' FROM t", schema=None).valid
    assert check_sql("SELECT a /* ; DROP TABLE t */ FROM t", schema=None).valid
    assert check_sql("SELECT $$; DROP TABLE t; $$", schema=None, dialect="postgres").valid


def test_dialect_decides_whether_a_backslash_escapes_a_quote() -> None:
    smuggled = "SELECT 'a\\'; DROP TABLE t; --'"
    assert codes(check_sql(smuggled, schema=None, dialect="sqlite")) == ["multiple_statements"]
    # MySQL reads \' as a quote inside the string, unless sql_mode has NO_BACKSLASH_ESCAPES; PostgreSQL does
    # the same with standard_conforming_strings = off (and always in E'...'): refused either way in both.
    for dialect, setting in (("mysql", "NO_BACKSLASH_ESCAPES"), ("postgres", "standard_conforming_strings")):
        result = check_sql(smuggled, schema=None, dialect=dialect)
        assert codes(result) == ["forbidden_expression"] and setting in result.problems[0].message
        assert codes(check_sql("SELECT E'a\\'' FROM t", schema=None, dialect=dialect)) == ["forbidden_expression"]
    assert check_sql("SELECT 'it''s' FROM t", schema=None, dialect="mysql").valid
    assert check_sql("SELECT 'a\\n' FROM t", schema=None, dialect="mysql").valid


# --- read-only policy -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("sql", "statement_type"), [
    ("INSERT INTO t VALUES (1)", "insert"),
    ("UPDATE t SET a = 1", "update"),
    ("DELETE FROM t", "delete"),
    ("DROP TABLE t", "drop"),
    ("CREATE TABLE t (a int)", "create"),
    ("ALTER TABLE t ADD COLUMN b int", "alter"),
    ("PRAGMA writable_schema = 1", "pragma"),
    ("ATTACH DATABASE 'x.db' AS x", "attach"),
])
def test_writes_and_ddl_are_not_read_only(sql: str, statement_type: str) -> None:
    check = check_sql(sql, schema=None)
    assert check.error_code == "unsafe_sql" and not check.read_only
    assert codes(check) == ["not_read_only"]
    assert check.statement_type == statement_type


@pytest.mark.parametrize(("sql", "dialect"), [
    ("TRUNCATE TABLE t", "postgres"), ("GRANT ALL ON t TO bob", "postgres"), ("SET ROLE admin", "postgres"),
    ("COPY t TO PROGRAM 'id'", "postgres"), ("BEGIN", "sqlite"), ("USE mysql", "mysql"),
])
def test_statements_outside_the_ddl_class_are_still_refused(sql: str, dialect: str) -> None:
    # sqlglot 30: Drop, TruncateTable, Grant, Set, Command... are not exp.DDL, so a deny-list would miss them.
    check = check_sql(sql, schema=None, dialect=dialect)
    assert check.error_code == "unsafe_sql"
    assert codes(check) == ["not_read_only"]


def test_a_data_modifying_cte_under_a_select_root_is_refused() -> None:
    check = check_sql("WITH d AS (DELETE FROM t RETURNING *) SELECT * FROM d", schema=None, dialect="postgres")
    assert check.statement_type == "select"
    assert codes(check) == ["not_read_only"]
    assert "DELETE" in check.problems[0].message


def test_select_into_is_refused() -> None:
    check = check_sql("SELECT * INTO copy FROM t", schema=None, dialect="postgres")
    assert check.error_code == "unsafe_sql" and codes(check) == ["select_into"]


@pytest.mark.parametrize(("sql", "dialect"), [
    ("SELECT * FROM t FOR UPDATE", "postgres"), ("SELECT * FROM t FOR SHARE", "postgres"),
    ("SELECT * FROM t LOCK IN SHARE MODE", "mysql"),
])
def test_locking_clauses_are_refused(sql: str, dialect: str) -> None:
    assert codes(check_sql(sql, schema=None, dialect=dialect)) == ["locking_clause"]


@pytest.mark.parametrize(("sql", "dialect", "name"), [
    ("SELECT pg_sleep(10)", "postgres", "pg_sleep"),
    ("SELECT pg_read_file('/etc/passwd')", "postgres", "pg_read_file"),
    ("SELECT lo_import('/etc/passwd')", "postgres", "lo_import"),
    ("SELECT * FROM dblink('host=x', 'SELECT 1') AS t(a int)", "postgres", "dblink"),
    ("SELECT load_file('/etc/passwd')", "mysql", "load_file"),
    ("SELECT sleep(5)", "mysql", "sleep"),
    ("SELECT benchmark(1000000, md5('a'))", "mysql", "benchmark"),
    ("SELECT xp_cmdshell('dir')", "mysql", "xp_cmdshell"),
    ("SELECT sys_exec('id')", "mysql", "sys_exec"),
    ("SELECT readfile('/etc/passwd')", "sqlite", "readfile"),
    ("SELECT writefile('/tmp/x', 'y')", "sqlite", "writefile"),
    ("SELECT load_extension('/tmp/x.so')", "sqlite", "load_extension"),
    ("SELECT a FROM t WHERE a = (SELECT pg_sleep(1))", "postgres", "pg_sleep"),
])
def test_unknown_functions_are_forbidden(sql: str, dialect: str, name: str) -> None:
    check = check_sql(sql, schema=None, dialect=dialect)
    assert check.error_code == "unsafe_sql"
    assert codes(check)[0] == "forbidden_function"
    assert f"{name}()" in check.problems[0].message.lower()


def test_known_functions_off_the_allow_list_are_forbidden_too() -> None:
    check = check_sql("SELECT * FROM read_csv('/etc/passwd')", schema=None, dialect="duckdb")
    assert codes(check) == ["forbidden_function"]


@pytest.mark.parametrize(("sql", "dialect"), [
    ("SELECT @@version", "mysql"), ("SELECT @a := 1", "mysql"),
    ("SELECT pg_catalog.pg_sleep(1)", "postgres"), ("SELECT * FROM sqlite_master", "sqlite"),
    ("SELECT passwd FROM pg_shadow", "postgres"), ("SELECT * FROM mysql.user", "mysql"),
    ("SELECT * FROM information_schema.tables", "postgres"), ("VALUES (1)", "sqlite"),
    ("SELECT 1 /*!50000 ; DROP TABLE t */", "mysql"), ("SELECT /*+ SET_VAR(x=1) */ 1", "mysql"),
])
def test_other_constructs_off_the_allow_list_are_forbidden(sql: str, dialect: str) -> None:
    check = check_sql(sql, schema=None, dialect=dialect)
    assert check.error_code == "unsafe_sql"
    assert codes(check) == ["forbidden_expression"]


@pytest.mark.parametrize(("sql", "dialect"), [
    ("SELECT a, COUNT(*) FROM t GROUP BY a HAVING COUNT(*) > 1 ORDER BY 2 DESC LIMIT 5", "sqlite"),
    ("SELECT a FROM t UNION SELECT b FROM u INTERSECT SELECT c FROM v EXCEPT SELECT d FROM w", "sqlite"),
    ("WITH x AS (SELECT a FROM t) SELECT a FROM x", "sqlite"),
    ("WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 5) SELECT i FROM n", "sqlite"),
    ("SELECT a, RANK() OVER (PARTITION BY b ORDER BY c DESC) FROM t", "postgres"),
    ("SELECT CASE WHEN a > 1 THEN 'x' ELSE 'y' END, COALESCE(b, 0), CAST(c AS INT) FROM t", "mysql"),
    ("SELECT strftime('%Y', d), julianday(d), date('now', '-1 day') FROM t", "sqlite"),
    ("SELECT date_trunc('month', d), EXTRACT(YEAR FROM d), now() - INTERVAL '1 day' FROM t", "postgres"),
    ("SELECT DATE_FORMAT(d, '%Y'), DATEDIFF(NOW(), d), IFNULL(a, 0) FROM t", "mysql"),
    ("(SELECT 1)", "sqlite"),
])
def test_ordinary_reads_pass(sql: str, dialect: str) -> None:
    check = check_sql(sql, schema=None, dialect=dialect)
    assert check.valid, check.problems
    assert check.read_only and check.problems == ()


# --- limits and failing closed ------------------------------------------------------------------------------------


def test_input_over_the_length_cap_is_refused_before_parsing(monkeypatch: pytest.MonkeyPatch) -> None:
    # A spy, not a stand-in: the cap must decide before the tokenizer ever sees the text (no wall-clock bound).
    tokenized: list[str] = []
    real_tokenize = sql_check_module.tokenize
    monkeypatch.setattr(sql_check_module, "tokenize", lambda *args: tokenized.append("x") or real_tokenize(*args))
    check = check_sql("SELECT " + "1 + " * MAX_SQL_CHARS + "1", schema=None)
    assert codes(check) == ["too_long"] and check.error_code == "invalid_sql"
    assert tokenized == []
    assert check_sql("SELECT 1", schema=None).valid and tokenized == ["x"]  # the spy does see ordinary input


@pytest.mark.parametrize("sql", [
    "SELECT " + "(" * 5000 + "1" + ")" * 5000,
    "SELECT " + "(" * (MAX_PAREN_DEPTH + 1) + "1" + ")" * (MAX_PAREN_DEPTH + 1),
    "SELECT " + "NOT " * 3000 + "1",
    "SELECT " + "CASE WHEN 1 THEN " * 400 + "1" + " END" * 400,
    "SELECT 1 FROM t WHERE " + " OR ".join(["a = 1"] * 1000),
])
def test_deep_nesting_is_too_deep_not_a_crash(sql: str) -> None:
    check = check_sql(sql, schema=None)
    assert codes(check) == ["too_deep"] and check.error_code == "invalid_sql"


def test_nesting_at_the_cap_still_passes() -> None:
    sql = "SELECT " + "(" * MAX_PAREN_DEPTH + "1" + ")" * MAX_PAREN_DEPTH
    assert check_sql(sql, schema=None).valid


@pytest.mark.parametrize("sql", ["SELECT FROM WHERE", "SELEC 1", "SELECT 'unterminated", "SELECT (1",
                                 "I cannot answer that.", "SELECT 1\x00; DROP TABLE t",
                                 "SELECT 1 -- x\x0b; DROP TABLE t", "SELECT 1 -- \u2028 DROP TABLE t"])
def test_unparseable_text_is_invalid_with_a_readable_message(sql: str) -> None:
    check = check_sql(sql, schema=None)
    assert check.error_code == "invalid_sql" and codes(check) == ["parse_error"]
    message = check.problems[0].message
    assert message.startswith("The SQL")
    assert not any(leak in message for leak in ("Error", "Traceback", "Token", "<", "\x1b"))


def test_an_unsupported_dialect_or_policy_fails_closed() -> None:
    assert check_sql("SELECT 1", schema=None, dialect="klingon").error_code == "invalid_sql"
    assert check_sql("SELECT 1", schema=None, policy="root").error_code == "invalid_sql"  # type: ignore[arg-type]
    assert check_sql(None, schema=None).error_code == "invalid_sql"  # type: ignore[arg-type]


def test_dialect_names_are_normalised_and_listed() -> None:
    # The five the contract pins; the others were dropped because nothing here defends their syntax.
    assert {"sqlite", "postgres", "mysql", "duckdb", "tsql"} == SUPPORTED_DIALECTS
    assert check_sql("SELECT 1", schema=None, dialect="bigquery").error_code == "invalid_sql"
    assert check_sql("SELECT 1", schema=None, dialect=" Postgres ").dialect == "postgres"


# --- ALLOW_WRITES ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("sql", "statement_type"), [
    ("INSERT INTO employee (Employee_ID, Name) VALUES (1, 'x')", "insert"),
    ("UPDATE employee SET Salary = Salary * 1.1 WHERE Department = 'Sales'", "update"),
    ("DELETE FROM employee WHERE Employee_ID = 3", "delete"),
    ("INSERT INTO employee SELECT * FROM employee WHERE Salary > 10", "insert"),
])
def test_allow_writes_lets_one_insert_update_or_delete_through(sql: str, statement_type: str) -> None:
    check = check_sql(sql, schema=EMPLOYEE, policy=SqlPolicy.ALLOW_WRITES)
    assert check.valid and check.statement_type == statement_type
    assert not check.read_only
    assert check.problems == ()
    assert check_sql(sql, schema=EMPLOYEE).error_code == "unsafe_sql"


@pytest.mark.parametrize("sql", ["DELETE FROM employee", "UPDATE employee SET Salary = 0"])
def test_allow_writes_warns_about_a_missing_where_without_refusing(sql: str) -> None:
    check = check_sql(sql, schema=EMPLOYEE, policy=SqlPolicy.ALLOW_WRITES)
    assert check.valid and check.error_code is None
    assert codes(check) == ["no_where_clause"]


@pytest.mark.parametrize(("sql", "code"), [
    ("DROP TABLE employee", "not_read_only"),
    ("MERGE INTO t USING s ON t.a = s.a WHEN MATCHED THEN DELETE", "not_read_only"),
    ("INSERT INTO t VALUES (1); DELETE FROM t", "multiple_statements"),
    ("INSERT INTO t VALUES (pg_sleep(5))", "forbidden_function"),
    ("WITH d AS (DELETE FROM u RETURNING *) INSERT INTO t SELECT * FROM d", "not_read_only"),
    ("UPDATE t SET a = (SELECT load_file('/etc/passwd'))", "forbidden_function"),
])
def test_allow_writes_still_refuses_ddl_stacking_nesting_and_dangerous_functions(sql: str, code: str) -> None:
    check = check_sql(sql, schema=None, dialect="postgres", policy=SqlPolicy.ALLOW_WRITES)
    assert check.error_code == "unsafe_sql"
    assert codes(check) == [code]


def test_allow_writes_grounds_insert_columns() -> None:
    check = check_sql("INSERT INTO employee (Employee_ID, Nickname) VALUES (1, 'x')", schema=EMPLOYEE,
                      policy=SqlPolicy.ALLOW_WRITES)
    assert check.error_code == "ungrounded_sql" and check.unknown_columns == ("Nickname",)
    assert check.compile_message == "table employee has no column named Nickname"


# --- grounding --------------------------------------------------------------------------------------------------


def test_unknown_tables_and_columns_are_refused_as_ungrounded() -> None:
    sql = "SELECT T1.Fnam, zzz FROM student AS T1 JOIN nowhere AS N ON N.id = T1.StuID"
    check = check_sql(sql, schema=DORMS)
    assert not check.valid and check.error_code == "ungrounded_sql"
    assert check.unknown_tables == ("nowhere",)
    assert check.unknown_columns == ("Fnam",)  # zzz may come from the unknown table, so it is not reported
    assert codes(check) == ["unknown_table", "unknown_column", "does_not_compile"]  # SQLite agrees
    assert check_sql(sql, schema=DORMS, grounding="strict") == check


def test_advisory_grounding_reports_unknown_names_without_refusing() -> None:
    sql = "SELECT T1.Fnam, zzz FROM student AS T1 JOIN nowhere AS N ON N.id = T1.StuID"
    check = check_sql(sql, schema=DORMS, grounding=SqlGrounding.ADVISORY)
    assert check.valid and check.error_code is None
    assert codes(check) == ["unknown_table", "unknown_column"]
    assert check.compiled is None and "advisory" in (check.compile_message or "")  # a partial schema can't judge
    with pytest.raises(ValueError):
        check_sql(sql, schema=DORMS, grounding="lenient")


def test_without_a_schema_nothing_is_ungrounded_and_nothing_is_verified() -> None:
    for schema in (None, "", "   "):
        check = check_sql("SELECT a FROM anything", schema=schema)
        assert check.valid and check.verified == "unverified" and check.verified_reason


def test_schema_text_that_can_t_be_read_makes_the_query_unverifiable_not_valid() -> None:
    check = check_sql("SELECT a FROM anything", schema="just prose, no tables")
    assert check.error_code == "unverifiable_sql"
    assert "just prose, no tables" in check.problems[0].message
    allowed = check_sql("SELECT a FROM anything", schema="just prose, no tables", unverified="allow")
    assert allowed.valid and allowed.verified == "unverified"
    assert [problem.code for problem in allowed.problems] == ["unverifiable_allowed"]


def test_an_unsafe_statement_is_unsafe_before_it_is_ungrounded() -> None:
    check = check_sql("SELECT * FROM nowhere FOR UPDATE", schema=DORMS, dialect="postgres")
    assert check.error_code == "unsafe_sql"


def test_a_qualifier_must_be_the_default_schema_or_one_the_schema_declares() -> None:
    assert check_sql("SELECT fname FROM main.student", schema=DORMS).valid
    assert check_sql("SELECT fname FROM public.student", schema=DORMS, dialect="postgres").valid
    assert check_sql("SELECT fname FROM dbo.student", schema=DORMS, dialect="tsql").valid
    other = check_sql("SELECT fname FROM other_db.student", schema=DORMS, dialect="mysql")
    assert other.error_code == "ungrounded_sql" and "'other_db' is not a schema" in other.problems[0].message
    declared = "CREATE TABLE sales.orders (id INT, total REAL)"
    assert check_sql("SELECT total FROM sales.orders", schema=declared, dialect="postgres").valid


def test_unqualified_columns_are_checked_against_every_table_in_scope() -> None:
    check = check_sql("SELECT fname, dorm_name, shoe_size FROM student, dorm", schema=DORMS)
    assert check.unknown_columns == ("shoe_size",)
    assert check.problems[0] == Problem("unknown_column", "Column 'shoe_size' is not in any table the query reads.")


def test_a_qualifier_that_names_nothing_is_reported() -> None:
    check = check_sql("SELECT T9.fname FROM student AS T1", schema=DORMS)
    assert check.unknown_columns == ("fname",)
    assert codes(check) == ["unknown_column", "does_not_compile"]
    assert "'T9' is no table or alias" in check.problems[0].message


@pytest.mark.parametrize("sql", [
    "SELECT fname AS first FROM student ORDER BY first",
    "SELECT dormid, COUNT(*) AS n FROM lives_in GROUP BY dormid HAVING n > 1",
    "WITH big AS (SELECT dormid AS d, student_capacity FROM dorm) SELECT d FROM big WHERE d > 1",
    "WITH c(x) AS (SELECT dormid FROM dorm) SELECT x FROM c",
    "SELECT s.n FROM (SELECT fname AS n FROM student) AS s",
    "SELECT v.a FROM (SELECT dormid FROM dorm) AS v(a)",
    "SELECT fname FROM student AS s WHERE EXISTS (SELECT 1 FROM lives_in AS l WHERE l.stuid = s.StuID)",
    "SELECT fname FROM student UNION SELECT dorm_name FROM dorm ORDER BY fname",
    "SELECT FNAME, Student.LNAME FROM STUDENT",
    "SELECT x.* FROM (SELECT * FROM student) AS x WHERE x.anything = 1",
])
def test_aliases_ctes_subqueries_and_outer_references_resolve(sql: str) -> None:
    check = check_sql(sql, schema=DORMS)
    # Grounding only: some of these don't compile in SQLite (a column DORMS lacks, `AS v(a)`), which is the
    # compile step's verdict, not a false grounding report.
    assert check.valid or codes(check) == ["does_not_compile"]
    assert check.unknown_tables == () and check.unknown_columns == (), check.problems


def test_cte_and_subquery_columns_are_checked() -> None:
    assert check_sql("WITH c AS (SELECT dormid FROM dorm) SELECT nope FROM c",
                     schema=DORMS).unknown_columns == ("nope",)
    assert check_sql("SELECT s.nope FROM (SELECT fname FROM student) AS s",
                     schema=DORMS).unknown_columns == ("nope",)
    assert check_sql("WITH c AS (SELECT 1 AS a) SELECT a FROM c", schema=DORMS).unknown_tables == ()


def test_sqlite_double_quoted_strings_are_not_unknown_columns() -> None:
    # The training data writes strings in double quotes; SQLite reads an unknown "name" as a string literal.
    check = check_sql('SELECT fname FROM student WHERE lname = "Smith"', schema=DORMS)
    assert check.unknown_columns == () and check.columns == ("fname", "lname")
    assert check_sql('SELECT fname FROM student WHERE lname = "Smith"', schema=DORMS,
                     dialect="postgres").unknown_columns == ("Smith",)


def test_without_a_schema_nothing_is_grounded() -> None:
    for schema in (None, "", "   "):  # (schema text that can't be read: unverifiable_sql, tested above)
        check = check_sql("SELECT a.b FROM nowhere AS a", schema=schema)
        assert check.valid and check.unknown_tables == () and check.unknown_columns == ()
        assert check.tables == ("nowhere",)


def test_grounding_is_case_insensitive() -> None:
    check = check_sql("select t1.FNAME from STUDENT as T1", schema=DORMS.upper())
    assert check.valid and check.unknown_columns == () and check.unknown_tables == ()


# --- schemas ----------------------------------------------------------------------------------------------------


def test_parse_schema_reads_statements_without_semicolons_and_lowercases() -> None:
    assert parse_schema(DORMS) == {
        "student": frozenset({"stuid", "fname", "lname"}),
        "lives_in": frozenset({"stuid", "dormid"}),
        "dorm": frozenset({"dormid", "dorm_name"}),
    }


@pytest.mark.parametrize(("schema", "expected"), [
    ("CREATE TABLE a (x VARCHAR); CREATE TABLE b (y VARCHAR, z INTEGER)",
     {"a": {"x"}, "b": {"y", "z"}}),
    ('CREATE TABLE "My Table" ("first name" TEXT, [last] TEXT, `age` INT, PRIMARY KEY (age))',
     {"my table": {"first name", "last", "age"}}),
    ("create table IF NOT EXISTS main.t (id integer primary key, v text not null default 'a,b')",
     {"t": {"id", "v"}}),
    ("CREATE TABLE t (order VARCHAR, date VARCHAR, year INTEGER, rank INTEGER)",
     {"t": {"order", "date", "year", "rank"}}),
    ("CREATE TABLE broken (a INT, b", {}),  # never closed: unreadable, not guessed at
    ("CREATE TABLE x AS SELECT 1 AS one, 2 AS two", {"x": {"one", "two"}}),
    ("not a schema at all", {}),
    ("", {}),
])
def test_parse_schema_is_lenient(schema: str, expected: dict[str, set[str]]) -> None:
    assert parse_schema(schema) == {name: frozenset(columns) for name, columns in expected.items()}


def fingerprint(schema: str) -> str:
    return read_schema(schema).fingerprint


def test_the_fingerprint_ignores_whitespace_keyword_case_comments_and_table_order() -> None:
    base = fingerprint("CREATE TABLE a (x VARCHAR, y INTEGER); CREATE TABLE b (z TEXT)")
    variants = [
        "create table a (x varchar, y integer); create table b (z text)",
        "CREATE TABLE b (z TEXT); CREATE TABLE a (x VARCHAR, y INTEGER)",
        "CREATE  TABLE a(\n  x VARCHAR ,\n  y INTEGER\n)\nCREATE TABLE b (z TEXT);",
        "CREATE TABLE b (z TEXT) CREATE TABLE a (x VARCHAR, y INTEGER)",
        "-- the a table\nCREATE TABLE a (x VARCHAR /* the x */, y INTEGER); CREATE TABLE b (z TEXT) -- b's\n",
        "CREATE TABLE a (X VARCHAR, y INTEGER); CREATE TABLE b (z TEXT)",  # SQLite's names ignore case
    ]
    assert all(fingerprint(variant) == base for variant in variants)


@pytest.mark.parametrize("other", [
    "CREATE TABLE a (y INTEGER, x VARCHAR); CREATE TABLE b (z TEXT)",  # column order is meaningful
    "CREATE TABLE a (x VARCHAR, y INTEGER); CREATE TABLE c (z TEXT)",
    "CREATE TABLE a (x VARCHAR, y INTEGER, w TEXT); CREATE TABLE b (z TEXT)",
    "CREATE TABLE a (x VARCHAR, y TEXT); CREATE TABLE b (z TEXT)",  # a type changed
])
def test_the_fingerprint_keeps_what_changes_the_answer(other: str) -> None:
    assert fingerprint(other) != fingerprint("CREATE TABLE a (x VARCHAR, y INTEGER); CREATE TABLE b (z TEXT)")


@pytest.mark.parametrize("text", ["", "'unterminated", "\x00\x01", "CREATE TABLE (((", "🙂 " * 100])
def test_reading_a_schema_never_raises(text: str) -> None:
    assert isinstance(fingerprint(text), str)


def test_find_create_tables_pulls_statements_out_of_chat_text() -> None:
    text = ("Here is my schema:\n```sql\nCREATE TABLE head (age INTEGER,\n  name VARCHAR);\n"
            "create table dept (id int, note text default 'a (b)')\n```\nHow many heads are older than 56? "
            "Also CREATE TABLE head (age INTEGER,\n  name VARCHAR) again.")
    # As written, newlines kept (a `--` comment must end where it did)
    assert find_create_tables(text) == ("CREATE TABLE head (age INTEGER,\n  name VARCHAR);\n"
                                        "create table dept (id int, note text default 'a (b)')")
    statements = create_table_statements(text)
    assert statements[0] == "CREATE TABLE head (age INTEGER,\n  name VARCHAR)"
    assert all(statement in text for statement in statements)


@pytest.mark.parametrize("text", ["", "How many singers are there?", "I'd like to create tables later",
                                  "CREATE TABLE t (a INT"])
def test_find_create_tables_finds_nothing_in_text_without_a_whole_statement(text: str) -> None:
    assert find_create_tables(text) == ""


def test_find_create_tables_is_linear_on_hostile_text(monkeypatch: pytest.MonkeyPatch) -> None:
    # What keeps it linear is the decision to stop at the first statement that never closes (each later head
    # would rescan the same tail): assert that decision, not a wall-clock bound.
    scans: list[int] = []
    real_closing_paren = finder_module.closing_paren
    monkeypatch.setattr(finder_module, "closing_paren",
                        lambda text, open_at, end: scans.append(open_at) or real_closing_paren(text, open_at, end))
    assert find_create_tables("CREATE TABLE t (" * 5000) == ""
    assert len(scans) == 1
    assert find_create_tables("CREATE TABLE a (x int) CREATE TABLE b (y int)") and len(scans) == 3


# --- extract_sql --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("text", "expected"), [
    ("SELECT count(*) FROM singer", "SELECT count(*) FROM singer"),
    ("  SELECT 1 ;  \n", "SELECT 1"),
    ("SELECT 1;;", "SELECT 1"),
    ("```sql\nSELECT name FROM head;\n```", "SELECT name FROM head"),
    ("```\nSELECT 1\n```\nThis returns one.", "SELECT 1"),
    ("```SELECT 1```", "SELECT 1"),
    ("```sql\nSELECT 1", "SELECT 1"),
    ("`SELECT 1`", "SELECT 1"),
    ("SQL: SELECT 1", "SELECT 1"),
    ("Answer: SELECT a FROM t;", "SELECT a FROM t"),
    ("sql query: SELECT 1", "SELECT 1"),
    ("Here is the SQL query:\n\nSELECT a\nFROM t\nWHERE b = 1", "SELECT a\nFROM t\nWHERE b = 1"),
    ("Here is the query: SELECT 1", "SELECT 1"),
    ("SELECT a FROM t\n\nThis query selects a from t.", "SELECT a FROM t"),
    ("SELECT a FROM t\nExplanation: it selects a.", "SELECT a FROM t"),
    ("SELECT a FROM t WHERE\n\nb = 1", "SELECT a FROM t WHERE\n\nb = 1"),
    ("", ""),
])
def test_extract_sql(text: str, expected: str) -> None:
    assert extract_sql(text) == expected


@pytest.mark.parametrize(("text", "code"), [
    ("SELECT 1; DROP TABLE t", "multiple_statements"),
    ("SELECT 1;\nDELETE FROM t", "multiple_statements"),
    ("SELECT 1\n\nDROP TABLE t;", "parse_error"),  # no `;` between them: one broken statement
])
def test_extract_sql_keeps_stacked_statements_for_the_guard_to_see(text: str, code: str) -> None:
    extracted = extract_sql(text)
    assert "DROP" in extracted or "DELETE" in extracted
    assert codes(check_sql(extracted, schema=None)) == [code]


# --- speed --------------------------------------------------------------------------------------------------------


def test_the_hot_path_reuses_the_parsed_schema_and_the_parsers() -> None:
    """What keeps a check at ~0.4 ms (docs/benchmarks.md measures it): the schema is parsed once, not per answer,
    and each thread keeps its tokenizer and parser. Asserted as those decisions; tests never time the machine."""
    sql, schema = SEED_EXAMPLES[2][0], SEED_EXAMPLES[2][1]
    check_sql(sql, schema=schema)  # warm the dialect and schema caches
    parsers = parsing_module.PER_THREAD.for_dialect("sqlite")
    misses = reader_module._read_cached.cache_info().misses
    for _ in range(50):
        assert check_sql(sql, schema=schema).valid
    assert reader_module._read_cached.cache_info().misses == misses
    assert parsing_module.PER_THREAD.for_dialect("sqlite") == parsers



# --- issue 13: table references, reserved aliases, hints, escapes -----------------------------------------------

USERS = "CREATE TABLE users (id INTEGER, name VARCHAR(50)); CREATE TABLE orders (id INTEGER, user_id INTEGER)"


@pytest.mark.parametrize(("dialect", "sql"), [
    ("duckdb", "SELECT * FROM 'secrets.csv'"),
    ("duckdb", 'SELECT * FROM "/etc/passwd"'),
    ("duckdb", "SELECT * FROM secrets.csv"),  # DuckDB reads a missing schema.table as the file `secrets.csv`
    ("duckdb", "SELECT * FROM 's3://bucket/key.parquet'"),
    ("duckdb", "SELECT * FROM duckdb_settings()"),
    ("sqlite", "SELECT * FROM dbstat"),
    ("sqlite", "SELECT * FROM pragma_table_info('users')"),
    ("postgres", "SELECT * FROM pg_stat_ssl"),
    ("tsql", "SELECT * FROM [linked].[master].[dbo].[syslogins]"),
    ("tsql", "SELECT * FROM sys.sql_logins"),
    ("mysql", "SELECT * FROM performance_schema.threads"),
])
def test_files_and_catalogs_are_refused_with_or_without_a_schema(dialect: str, sql: str) -> None:
    for schema, grounding in ((USERS, "strict"), (None, "strict"), (USERS, "advisory")):
        assert check_sql(sql, schema=schema, dialect=dialect, grounding=grounding).error_code == "unsafe_sql"


def test_a_schema_qualifier_the_schema_declares_is_not_a_duckdb_file() -> None:
    declared = "CREATE TABLE sales.orders (id INTEGER, total REAL)"
    assert check_sql("SELECT total FROM sales.orders", schema=declared, dialect="duckdb").valid
    assert check_sql("SELECT total FROM main.orders", schema=None, dialect="duckdb").valid


@pytest.mark.parametrize("sql", ["SELECT 1 SHUTDOWN", "SELECT name FROM users CHECKPOINT",
                                 "SELECT name FROM users AS RECONFIGURE", "SELECT count(*) KILL FROM users"])
def test_a_tsql_reserved_word_never_passes_as_an_alias(sql: str) -> None:
    check = check_sql(sql, schema=USERS, dialect="tsql")
    assert check.error_code == "unsafe_sql" and "reserved word" in check.problems[0].message


def test_a_quoted_alias_or_an_ordinary_one_passes_in_tsql() -> None:
    assert check_sql("SELECT 1 AS [shutdown]", schema=None, dialect="tsql").valid
    assert check_sql("SELECT name AS total FROM users WITH (NOLOCK)", schema=USERS, dialect="tsql").valid


def test_only_read_table_hints_pass_in_tsql() -> None:
    assert codes(check_sql("SELECT name FROM users WITH (UPDLOCK)", schema=USERS, dialect="tsql")) == [
        "locking_clause"]
    assert codes(check_sql("SELECT name FROM users OPTION (MAXDOP 1)", schema=USERS, dialect="tsql")) == [
        "forbidden_expression"]


@pytest.mark.parametrize(("sql", "valid"), [
    ("SELECT d FROM generate_series('2024-01-01'::date, '2024-12-31'::date, interval '1 day') AS d", True),
    ("SELECT n FROM generate_series(1, 1000) AS n", True),
    ("SELECT d FROM generate_series(current_date - 6, current_date, interval '1 day') AS d", True),
    ("SELECT count(*) FROM generate_series(1, 10000000000)", False),
    ("SELECT count(*) FROM generate_series(1::bigint, 10000000000::bigint)", False),
    ("SELECT count(*) FROM generate_series(1, 10 ^ 12)", False),
])
def test_generate_series_is_a_date_spine_or_a_small_range(sql: str, valid: bool) -> None:
    assert check_sql(sql, schema=None, dialect="postgres").valid is valid
