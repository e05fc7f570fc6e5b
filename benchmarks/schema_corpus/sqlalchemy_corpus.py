"""SQLAlchemy's `CreateTable` output for each dialect (what an ORM user pastes), from one metadata with two
schemas holding the same table name, names with spaces and reserved words, keys and a check constraint. The ground
truth is the DDL run on the real engine (SQLite in process, the throwaway PostgreSQL and MariaDB); SQL Server has
no engine here, so its catalog is SQLAlchemy's own metadata and its queries were checked by hand."""

from __future__ import annotations

import sqlite3
from typing import Any

from benchmarks.engine_servers import ThrowawayMariaDB, ThrowawayPostgres
from benchmarks.schema_corpus.files import Catalog, CorpusFile
from benchmarks.schema_corpus.mariadb_corpus import catalog as mariadb_catalog
from benchmarks.schema_corpus.postgres_corpus import catalog as postgres_catalog


def _metadata() -> Any:
    from sqlalchemy import CheckConstraint, Column, DateTime, ForeignKey, Integer, MetaData, Numeric, String, Table

    metadata = MetaData()
    Table("customers", metadata, Column("id", Integer, primary_key=True),
          Column("first name", String(50), comment="the customer's given name"), Column("order", Integer),
          Column("group", String(10)), Column("index", Integer), Column("created", DateTime),
          comment="everyone's rows")
    # (no foreign key from sales.orders to customers: SQLAlchemy writes it unqualified, which MySQL then looks for in
    # the sales database)
    Table("orders", metadata, Column("id", Integer, primary_key=True), Column("customer_id", Integer),
          Column("amount", Numeric(10, 2)), schema="sales")
    Table("orders", metadata, Column("id", Integer, primary_key=True), Column("archived_at", DateTime),
          schema="archive")
    Table("Order Items", metadata, Column("order_id", Integer, ForeignKey("sales.orders.id")),
          Column("qty", Integer), CheckConstraint("qty > 0", name="qty_positive"))
    return metadata


def _text(dialect: Any) -> str:
    from sqlalchemy.schema import CreateTable

    return "\n".join(str(CreateTable(table).compile(dialect=dialect)).strip() + ";\n"
                     for table in _metadata().sorted_tables)


def _metadata_catalog() -> Catalog:
    return {(f"{table.schema}.{table.name}" if table.schema else table.name): tuple(c.name for c in table.columns)
            for table in _metadata().sorted_tables}


def _queries(quote: str, close: str) -> tuple[str, ...]:
    def q(name: str) -> str:
        return f"{quote}{name}{close}"

    return (f"SELECT {q('first name')}, {q('order')}, {q('group')}, {q('index')} FROM customers",
            "SELECT o.amount FROM sales.orders AS o JOIN customers AS c ON c.id = o.customer_id",
            "SELECT archived_at FROM archive.orders",
            f"SELECT qty FROM {q('Order Items')} WHERE qty > 1")


def files(postgres: ThrowawayPostgres | None, mariadb: ThrowawayMariaDB | None) -> list[CorpusFile]:
    import sqlalchemy
    from sqlalchemy.dialects import mssql, mysql, postgresql, sqlite

    version = f"SQLAlchemy {sqlalchemy.__version__}"
    found = [_sqlite(_text(sqlite.dialect()), version)]
    if postgres is not None:
        text = _text(postgresql.dialect())
        postgres.psql("CREATE DATABASE orm;")
        postgres.psql("CREATE SCHEMA sales; CREATE SCHEMA archive;\n" + text, "orm")
        queries = _queries('"', '"')
        for query in queries:
            postgres.psql(f"EXPLAIN {query};", "orm")
        found.append(CorpusFile("sqlalchemy/postgresql.sql", f"{version} CreateTable, postgresql", "postgres", text,
                                postgres_catalog(postgres, "orm"), queries))
    if mariadb is not None:
        text = _text(mysql.dialect())
        mariadb.sql("CREATE DATABASE orm; CREATE DATABASE sales; CREATE DATABASE archive;")
        mariadb.sql(text, "orm")
        queries = _queries("`", "`")
        for query in queries:
            mariadb.sql(f"EXPLAIN {query};", "orm")
        truth = mariadb_catalog(mariadb, "orm")
        for database in ("sales", "archive"):  # MySQL's schemas are databases
            truth |= {f"{database}.{table}": columns for table, columns in mariadb_catalog(mariadb, database).items()}
        found.append(CorpusFile("sqlalchemy/mysql.sql", f"{version} CreateTable, mysql", "mysql", text, truth,
                                queries))
    found.append(CorpusFile("sqlalchemy/mssql.sql", f"{version} CreateTable, mssql", "tsql", _text(mssql.dialect()),
                            _metadata_catalog(), _queries("[", "]"), hand_checked=True,
                            notes=("no SQL Server here: the catalog is SQLAlchemy's metadata, the queries were "
                                   "checked by hand",)))
    return found


def _sqlite(text: str, version: str) -> CorpusFile:
    connection = sqlite3.connect(":memory:")
    try:
        for schema in ("sales", "archive"):  # SQLite's schemas are attached databases
            connection.execute(f"ATTACH DATABASE ':memory:' AS {schema}")
        connection.executescript(text)
        truth: Catalog = {}
        for schema in ("main", "sales", "archive"):
            for (name,) in connection.execute(f"SELECT name FROM {schema}.sqlite_master WHERE type = 'table'"):
                columns = connection.execute("SELECT name FROM pragma_table_info(?, ?)", (name, schema)).fetchall()
                truth[name if schema == "main" else f"{schema}.{name}"] = tuple(column for (column,) in columns)
        queries = _queries('"', '"')
        for query in queries:
            connection.execute(f"EXPLAIN {query}")
    finally:
        connection.close()
    return CorpusFile("sqlalchemy/sqlite.sql", f"{version} CreateTable, sqlite", "sqlite", text, truth, queries)
