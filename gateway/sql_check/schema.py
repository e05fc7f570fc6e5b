"""The schema helpers of the public API (docs/contract.md), each a view of the one schema model
(gateway/schema_model): the tables and columns, and the CREATE statements found in free text."""

from __future__ import annotations

from gateway.schema_model import joined, read_schema, schema_statements


def parse_schema(schema: str, dialect: str = "sqlite") -> dict[str, frozenset[str]]:
    """Table name -> its column names, lower-cased (tables and views; the first of two same-named ones); never
    raises. `dialect` is accepted for old callers: the reader reads every dialect's DDL."""
    tables: dict[str, frozenset[str]] = {}
    for table in read_schema(schema).tables:
        tables.setdefault(table.name.lower(), table.column_names())
    return tables


def create_table_statements(text: str) -> tuple[str, ...]:
    """Each CREATE TABLE (through its closing parenthesis) and CREATE VIEW in free text, exactly as written."""
    return schema_statements(text)


def find_create_tables(text: str) -> str:
    """The CREATE statements in free text as one schema text: `; ` between one-line statements (the training
    data's shape), else `;` and a newline, so a `--` comment ends where it did."""
    return joined(create_table_statements(text))
