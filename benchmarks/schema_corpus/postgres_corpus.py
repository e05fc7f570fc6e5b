"""PostgreSQL: DDL with what analysts' databases hold (two schemas with the same table name, views, a
materialized view, a partitioned and an inherited table, an enum, names with spaces and reserved words, comments
with apostrophes, a function with a `$$` body), loaded into a throwaway server and printed back by `pg_dump
--schema-only`. The ground truth is the server's own catalog (pg_class / pg_attribute)."""

from __future__ import annotations

from benchmarks.engine_servers import ThrowawayPostgres
from benchmarks.schema_corpus.files import Catalog, CorpusFile

SOURCE = """\
-- The shop's schema, as a person writes it: the customers' table first
CREATE SCHEMA sales;
CREATE SCHEMA archive;
CREATE TYPE mood AS ENUM ('happy', 'sad');
CREATE TABLE customers (
    id serial PRIMARY KEY,
    "first name" text NOT NULL,  -- the customer's given name
    "order" int,                 /* reserved words as names: "order", "group", "index" */
    "group" text,
    "index" int,
    "CamelCase" varchar(20),
    email varchar(200) UNIQUE,
    tags text[],
    created_at timestamp with time zone DEFAULT now(),
    balance numeric(12,2) DEFAULT 0,
    feeling mood,
    note text DEFAULT 'it''s; a (test) -- not a comment'
);
COMMENT ON TABLE customers IS 'everyone who ever bought; O''Brien included';
COMMENT ON COLUMN customers."first name" IS 'given name';
CREATE TABLE sales.orders (id bigserial PRIMARY KEY, customer_id int REFERENCES customers (id),
                           amount numeric(10,2), placed_on date);
CREATE TABLE archive.orders (id bigint PRIMARY KEY, customer_id int, amount numeric(10,2), archived_at timestamp);
ALTER TABLE archive.orders ADD COLUMN note text;
CREATE TABLE "Order Items" (order_id bigint REFERENCES sales.orders (id) ON DELETE CASCADE, line int,
                            qty int CHECK (qty > 0), PRIMARY KEY (order_id, line));
CREATE UNLOGGED TABLE IF NOT EXISTS events (id int, payload jsonb, at timestamp);
CREATE TABLE measurements (id int, logdate date NOT NULL, peak int) PARTITION BY RANGE (logdate);
CREATE TABLE measurements_2024 PARTITION OF measurements FOR VALUES FROM ('2024-01-01') TO ('2025-01-01');
CREATE TABLE parent_t (id int, name text);
CREATE TABLE child_t (extra int) INHERITS (parent_t);
CREATE INDEX customers_email ON customers (email);
CREATE SEQUENCE counter_seq;
CREATE VIEW sales.big_orders AS
    SELECT o.id, o.amount, c."first name" FROM sales.orders o JOIN customers c ON c.id = o.customer_id
    WHERE o.amount > 100;
CREATE MATERIALIZED VIEW order_totals AS SELECT customer_id, sum(amount) AS total FROM sales.orders
    GROUP BY customer_id;
CREATE FUNCTION add_one(i int) RETURNS int AS $$ BEGIN RETURN i + 1; END; $$ LANGUAGE plpgsql;
"""

QUERIES = (
    'SELECT "first name", "order", "group", "index" FROM customers WHERE balance > 10',
    'SELECT "CamelCase", tags[1] FROM customers ORDER BY created_at DESC LIMIT 5',
    "SELECT o.amount, c.email FROM sales.orders AS o JOIN customers AS c ON c.id = o.customer_id",
    "SELECT archived_at, note FROM archive.orders WHERE amount > 0",
    'SELECT line, qty FROM "Order Items" WHERE order_id = 1',
    'SELECT amount, "first name" FROM sales.big_orders',
    "SELECT customer_id, total FROM order_totals",
    "SELECT peak FROM measurements_2024 WHERE logdate > DATE '2024-06-01'",
    "SELECT name, extra FROM child_t",
    "SELECT count(*) FROM events WHERE payload IS NOT NULL",
)

_CATALOG = r"""
SELECT n.nspname, c.relname, string_agg(a.attname, E'\x1f' ORDER BY a.attnum)
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace JOIN pg_attribute a ON a.attrelid = c.oid
WHERE c.relkind IN ('r', 'v', 'm', 'p', 'f') AND a.attnum > 0 AND NOT a.attisdropped
  AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg_toast%'
GROUP BY 1, 2;
"""


def catalog(server: ThrowawayPostgres, database: str) -> Catalog:
    found: Catalog = {}
    for line in server.psql(_CATALOG, database).splitlines():
        schema, table, columns = line.split("\t")
        found[table if schema == "public" else f"{schema}.{table}"] = tuple(columns.split("\x1f"))
    return found


def checked_queries(server: ThrowawayPostgres, database: str, queries: tuple[str, ...]) -> tuple[str, ...]:
    """Each query, once PostgreSQL itself has prepared it (EXPLAIN) against the schema: known correct."""
    for query in queries:
        server.psql(f"EXPLAIN {query};", database)
    return queries


def files(server: ThrowawayPostgres) -> list[CorpusFile]:
    server.psql("CREATE DATABASE corpus;")
    server.psql(SOURCE, "corpus")
    truth = catalog(server, "corpus")
    queries = checked_queries(server, "corpus", QUERIES)
    return [
        CorpusFile("postgres/source.sql", f"hand-written DDL, loaded into {server.version()}", "postgres", SOURCE,
                   truth, queries),
        CorpusFile("postgres/pg_dump.sql", f"pg_dump --schema-only ({server.version()})", "postgres",
                   server.pg_dump("corpus"), truth, queries),
    ]


def big_dump(server: ThrowawayPostgres, tables: int) -> CorpusFile:
    """A `tables`-table database of ordinary shape (6 to 9 columns, a serial key, a foreign key on every third
    table, an index on every fourth, a comment on every tenth), as pg_dump prints it."""
    statements = []
    for i in range(tables):
        columns = ["id serial PRIMARY KEY", "name text NOT NULL", "amount numeric(10,2) DEFAULT 0",
                   "created_at timestamp without time zone DEFAULT now()", '"Status Code" varchar(20)',
                   "note text"][: 6] + [f"extra_{k} integer" for k in range(i % 4)]
        if i % 3 == 2:
            columns.append(f"parent_id integer REFERENCES t_{i - 1:04d} (id)")
        statements.append(f"CREATE TABLE t_{i:04d} ({', '.join(columns)});")
        if i % 4 == 0:
            statements.append(f"CREATE INDEX t_{i:04d}_name ON t_{i:04d} (name);")
        if i % 10 == 0:
            statements.append(f"COMMENT ON TABLE t_{i:04d} IS 'table {i}''s rows';")
    server.psql(f"CREATE DATABASE big{tables};")
    server.psql("\n".join(statements), f"big{tables}")
    return CorpusFile(f"postgres/pg_dump_{tables}_tables.sql", f"pg_dump --schema-only ({server.version()})",
                      "postgres", server.pg_dump(f"big{tables}"), catalog(server, f"big{tables}"),
                      ("SELECT t.name, t.amount FROM t_0002 AS t JOIN t_0001 AS p ON p.id = t.parent_id",))
