"""The eval's schema reading (the gateway's one schema reader) and the EXPLAIN-only compile check against an empty
SQLite database."""

from __future__ import annotations

from pathlib import Path

import pytest

from clients.sql_match import schema_columns
from clients.sqlite_check import compile_in_sqlite

HEAD = "CREATE TABLE head (age INTEGER, name VARCHAR); CREATE TABLE department (department_id VARCHAR)"


@pytest.mark.parametrize(
    ("schema", "expected"),
    [
        ("CREATE TABLE a (x int) CREATE TABLE b (y int)", {"a": ["x"], "b": ["y"]}),
        ("CREATE TABLE a (x int); CREATE TABLE b (y int);", {"a": ["x"], "b": ["y"]}),
        ("create table a (x int)\ncreate table b (y int)", {"a": ["x"], "b": ["y"]}),
        # CREATE and ';' inside quotes or parentheses never split
        ("CREATE TABLE a (note text DEFAULT 'x; CREATE TABLE z'); CREATE TABLE \"create\" (y int)",
         {"a": ["note"], "create": ["y"]}),
        ("CREATE TABLE recreate_log (created int)", {"recreate_log": ["created"]}),
        # a comment with an apostrophe and a line comment inside the column list
        ("CREATE TABLE emp (\n  id int, -- the employee's id\n  name text\n)", {"emp": ["id", "name"]}),
        ("  ;; ", {}),
    ],
)
def test_schema_columns_reads_every_statement(schema: str, expected: dict[str, list[str]]) -> None:
    assert {table: list(columns) for table, columns in schema_columns(schema).items()} == expected


def test_query_over_the_schema_compiles() -> None:
    result = compile_in_sqlite("SELECT COUNT(*) FROM head WHERE age > 56;", HEAD)
    assert result.compiles is True and result.error is None


@pytest.mark.parametrize(
    ("sql", "message"),
    [
        ("SELECT COUNT(*) FROM heads", "no such table"),
        ("SELECT salary FROM head", "no such column"),
        ("SELEC name FROM head", "syntax error"),
        ("SELECT 1; DROP TABLE head", "one statement"),
        ("", "empty"),
    ],
)
def test_query_that_does_not_compile_says_why(sql: str, message: str) -> None:
    result = compile_in_sqlite(sql, HEAD)
    assert result.compiles is False
    assert result.error is not None and message in result.error


def test_tables_written_without_semicolons_are_all_created() -> None:
    schema = "CREATE TABLE a (x int) CREATE TABLE b (y int)"
    assert compile_in_sqlite("SELECT a.x, b.y FROM a JOIN b ON a.x = b.y", schema).compiles is True


def test_a_broken_schema_is_reported_apart_from_the_query() -> None:
    result = compile_in_sqlite("SELECT 1", "CREATE TABLE x (a int,")
    assert result.compiles is None
    assert result.schema_error is not None


def test_nothing_outside_the_in_memory_database_is_touched(tmp_path: Path) -> None:
    target = tmp_path / "attached.db"
    result = compile_in_sqlite(f"ATTACH DATABASE '{target}' AS other", HEAD)
    assert result.compiles is False
    schema_attach = compile_in_sqlite("SELECT 1", f"ATTACH DATABASE '{target}' AS other")
    assert schema_attach.compiles is None
    assert not target.exists()


def test_write_statements_are_compiled_not_run() -> None:
    # EXPLAIN prepares a DELETE without executing it, so the read-only question is left to the gateway.
    assert compile_in_sqlite("DELETE FROM head", HEAD).compiles is True
