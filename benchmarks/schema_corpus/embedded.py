"""The engines that run in process or as one program: SQLite (the `sqlite3` command line's `.schema`, and the
sqlite_master text a Python script would join) and DuckDB (`EXPORT DATABASE`'s schema.sql). Each file's ground
truth is that engine's own catalog of the database the DDL built."""

from __future__ import annotations

import shutil
import sqlite3
import subprocess
import tempfile
from pathlib import Path

from benchmarks.schema_corpus.files import Catalog, CorpusFile

SQLITE_SOURCE = """\
-- the customers' table: names with spaces and reserved words, quoted three ways
CREATE TABLE customers (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  "first name" TEXT,          -- the customer's given name
  [order] INTEGER,
  `group` TEXT,
  "index" INT,
  note TEXT DEFAULT 'it''s -- not a comment; nor a split'
);
CREATE TABLE orders (id INTEGER PRIMARY KEY, customer_id INTEGER REFERENCES customers(id), amount REAL)
  WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS "odd name" ("a b" TEXT, c);
CREATE TABLE t_strict (x INT, y TEXT) STRICT;
CREATE VIEW big_orders AS SELECT id, amount FROM orders WHERE amount > 100;
CREATE VIEW v_star AS SELECT * FROM customers;
CREATE INDEX ix_orders_customer ON orders(customer_id);
CREATE TRIGGER trg AFTER INSERT ON orders BEGIN
  UPDATE customers SET note = 'x; y' WHERE id = NEW.customer_id;
END;
CREATE VIRTUAL TABLE docs USING fts5(title, body);
"""
SQLITE_QUERIES = (
    'SELECT "first name", "order", "group", "index" FROM customers WHERE note LIKE \'%x%\'',
    "SELECT c.id, o.amount FROM orders AS o JOIN customers AS c ON c.id = o.customer_id",
    'SELECT "a b", c FROM "odd name"',
    "SELECT amount FROM big_orders",
    'SELECT "first name" FROM v_star',
    "SELECT title FROM docs WHERE body = 'x'",
    "SELECT x, y FROM t_strict",
)

DUCKDB_SOURCE = """\
CREATE SCHEMA sales;
CREATE SCHEMA archive;
CREATE TYPE mood AS ENUM ('happy', 'sad');
CREATE TABLE customers (id INTEGER PRIMARY KEY, "first name" VARCHAR, "order" INTEGER, "group" VARCHAR,
                        "index" INTEGER, tags VARCHAR[], info STRUCT(a INTEGER, b VARCHAR), feeling mood,
                        amount DECIMAL(10, 2));
COMMENT ON TABLE customers IS 'the customer''s table';
CREATE TABLE payments (id INTEGER PRIMARY KEY, customer_id INTEGER REFERENCES customers (id), paid DATE);
CREATE TABLE sales.orders (id INTEGER, customer_id INTEGER, amount DECIMAL(10, 2));
CREATE TABLE archive.orders (id INTEGER, archived_at TIMESTAMP);
CREATE VIEW sales.big_orders AS SELECT id, amount FROM sales.orders WHERE amount > 100;
CREATE SEQUENCE seq1;
CREATE MACRO add_one(x) AS x + 1;
"""
DUCKDB_QUERIES = (
    'SELECT "first name", "order", "group", "index", info[\'a\'] FROM customers WHERE amount > 1',
    "SELECT o.amount FROM sales.orders AS o JOIN customers AS c ON c.id = o.customer_id",
    "SELECT archived_at FROM archive.orders",
    "SELECT amount FROM sales.big_orders",
    "SELECT tags, feeling FROM customers ORDER BY amount DESC LIMIT 3",
    "SELECT p.paid FROM payments AS p JOIN customers AS c ON c.id = p.customer_id",
)


def sqlite_catalog(connection: sqlite3.Connection) -> Catalog:
    found: Catalog = {}
    for (name,) in connection.execute("SELECT name FROM sqlite_master WHERE type IN ('table', 'view') ORDER BY name"):
        columns = connection.execute("SELECT name FROM pragma_table_info(?)", (name,)).fetchall()
        found[name] = tuple(column for (column,) in columns)
    return found


def sqlite_files(folder: Path) -> list[CorpusFile]:
    path = folder / "corpus.sqlite"
    connection = sqlite3.connect(path)
    try:
        connection.executescript(SQLITE_SOURCE)
        truth = sqlite_catalog(connection)
        for query in SQLITE_QUERIES:
            connection.execute(f"EXPLAIN {query}")  # SQLite prepares it: known correct
        master = ";\n".join(sql for (sql,) in connection.execute(
            "SELECT sql FROM sqlite_master WHERE sql IS NOT NULL ORDER BY rowid")) + ";"
    finally:
        connection.close()
    version = sqlite3.sqlite_version
    # The DDL itself does not define what SQLite adds on its own: sqlite_sequence (AUTOINCREMENT) and the FTS5
    # table's shadow tables (docs_data, docs_idx, ...); the dumps below do print them.
    defined = {name: columns for name, columns in truth.items()
               if not name.startswith("sqlite_") and not name.startswith("docs_")}
    files = [CorpusFile("sqlite/source.sql", f"hand-written DDL, loaded into SQLite {version}", "sqlite",
                        SQLITE_SOURCE, defined, SQLITE_QUERIES,
                        notes=("the ground truth leaves out the tables SQLite creates on its own",)),
             CorpusFile("sqlite/sqlite_master.sql", f"sqlite_master.sql joined by ';' (SQLite {version})",
                        "sqlite", master, truth, SQLITE_QUERIES)]
    cli = shutil.which("sqlite3")
    if cli is not None:
        shell = subprocess.run([cli, str(path), ".schema"], capture_output=True, text=True, check=True, timeout=60)
        files.append(CorpusFile("sqlite/dot_schema.sql", f"sqlite3 .schema ({cli_version(cli)})", "sqlite",
                                shell.stdout, truth, SQLITE_QUERIES))
    return files


def cli_version(cli: str) -> str:
    done = subprocess.run([cli, "--version"], capture_output=True, text=True, check=False, timeout=30)
    return "sqlite3 " + " ".join(done.stdout.split()[:1])


def duckdb_files(folder: Path) -> list[CorpusFile]:
    import duckdb

    connection = duckdb.connect(":memory:")
    try:
        connection.execute(DUCKDB_SOURCE)
        rows = connection.execute(
            "SELECT table_schema, table_name, list(column_name ORDER BY ordinal_position) "
            "FROM information_schema.columns GROUP BY 1, 2").fetchall()
        truth = {(table if schema == "main" else f"{schema}.{table}"): tuple(columns)
                 for schema, table, columns in rows}
        for query in DUCKDB_QUERIES:
            connection.execute(f"PREPARE known_correct AS {query}")  # DuckDB binds it: known correct
            connection.execute("DEALLOCATE known_correct")
        export = Path(tempfile.mkdtemp(dir=folder))
        connection.execute(f"EXPORT DATABASE '{export}'")
        exported = (export / "schema.sql").read_text(encoding="utf-8")
    finally:
        connection.close()
    tool = f"DuckDB {duckdb.__version__}"
    return [CorpusFile("duckdb/source.sql", f"hand-written DDL, loaded into {tool}", "duckdb", DUCKDB_SOURCE, truth,
                       DUCKDB_QUERIES),
            CorpusFile("duckdb/export_schema.sql", f"EXPORT DATABASE schema.sql ({tool})", "duckdb", exported,
                       truth, DUCKDB_QUERIES)]
