"""How each dialect of SUPPORTED_DIALECTS is named to a person, and the order the web form lists them in.
A leaf: the list itself stays SUPPORTED_DIALECTS (result.py), this only names it."""

from __future__ import annotations

from collections.abc import Iterable

_LABELS: dict[str, str] = {
    "sqlite": "SQLite",
    "postgres": "PostgreSQL",
    "mysql": "MySQL",
    "tsql": "SQL Server (T-SQL)",
    "duckdb": "DuckDB",
    "bigquery": "BigQuery",
    "snowflake": "Snowflake",
    "oracle": "Oracle",
    "redshift": "Amazon Redshift",
    "trino": "Trino",
    "presto": "Presto",
    "spark": "Spark SQL",
    "databricks": "Databricks",
    "clickhouse": "ClickHouse",
    "hive": "Hive",
    "teradata": "Teradata",
}
# The engines most analysts run first; the rest follow by name.
_FIRST = ("sqlite", "postgres", "mysql", "tsql", "duckdb")


def dialect_label(dialect: str) -> str:
    return _LABELS.get(dialect, dialect)


def in_menu_order(dialects: Iterable[str]) -> list[str]:
    """`dialects` with the common engines first, then the others by label."""
    offered = set(dialects)
    first = [name for name in _FIRST if name in offered]
    return first + sorted(offered - set(first), key=lambda name: dialect_label(name).lower())
