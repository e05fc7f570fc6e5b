"""`sqlgate ask --schema-from postgresql://…` against a real PostgreSQL: the catalog it reads must give the gateway's
schema model exactly what that database's own `pg_dump --schema-only` gives it (tables and views, their schemas,
columns and types, keys, descriptions), and read nothing but the catalog."""

from __future__ import annotations

import subprocess
from typing import Any

import psycopg
import pytest

from benchmarks.engine_servers import postgres_bin
from benchmarks.schema_corpus.postgres_corpus import SOURCE
from clients.catalog import schema_from
from gateway.schema_model import read_schema
from gateway.schema_model.model import SchemaModel


def pg_dump(cluster: Any, url: str) -> str:
    bin_dir = postgres_bin()
    assert bin_dir is not None
    database = url.split("?")[0].rsplit("/", 1)[-1]
    done = subprocess.run([str(bin_dir / "pg_dump"), "--schema-only", "--no-owner", "-h", str(cluster.folder),
                           "-U", "postgres", "-d", database], capture_output=True, text=True, timeout=60,
                          check=False)
    assert done.returncode == 0, done.stderr
    return done.stdout


def facts(model: SchemaModel) -> dict[str, dict[str, Any]]:
    """What the gateway takes from a schema, per table, in a form two texts can be compared by."""
    return {table.qualified: {
        "kind": table.kind,
        "columns": [(column.name, column.type.lower()) for column in table.columns],
        "primary_key": table.primary_key,
        "foreign_keys": sorted((fk.columns, fk.table_schema, fk.table, fk.ref_columns) for fk in table.foreign_keys),
        "description": table.description,
        "column_descriptions": {column.name: column.description for column in table.columns if column.description},
    } for table in model.tables}


@pytest.fixture
def shop(postgres_url: str) -> str:
    with psycopg.connect(postgres_url, autocommit=True) as connection:
        connection.execute(SOURCE)  # type: ignore[arg-type]  # a trusted fixture, many statements at once
    return postgres_url


def test_a_live_catalog_gives_the_same_schema_model_as_its_pg_dump(shop: str, postgres_cluster: Any) -> None:
    from_catalog = read_schema(schema_from(shop))
    from_dump = read_schema(pg_dump(postgres_cluster, shop))
    assert not from_catalog.unreadable, [part.excerpt for part in from_catalog.unreadable]
    catalog_facts, dump_facts = facts(from_catalog), facts(from_dump)
    assert set(catalog_facts) == set(dump_facts)
    assert {"customers", "sales.orders", "archive.orders", "Order Items", "sales.big_orders",
            "order_totals"} <= set(catalog_facts)
    differences = {(name, key): (catalog_facts[name][key], value) for name, table in dump_facts.items()
                   for key, value in table.items() if catalog_facts[name][key] != value}
    assert not differences, differences
    # Types, keys and descriptions came through, not just names.
    customers = catalog_facts["customers"]
    assert ("first name", "text") in customers["columns"] and customers["primary_key"] == ("id",)
    assert customers["description"] == "everyone who ever bought; O'Brien included"
    assert catalog_facts["sales.orders"]["foreign_keys"] == [(("customer_id",), "", "customers", ("id",))]


def test_the_catalog_is_read_in_a_read_only_transaction(shop: str, postgres_cluster: Any) -> None:
    # What the server was sent, from its own statement log: a read-only transaction and catalog queries only.
    database = shop.split("?")[0].rsplit("/", 1)[-1]
    with psycopg.connect(shop, autocommit=True) as connection:
        connection.execute(f"ALTER DATABASE {database} SET log_statement = 'all'")  # type: ignore[arg-type]
    log = postgres_cluster.folder / "log"
    before = log.read_text(errors="replace")
    schema_from(shop)
    logged = [piece.strip() for piece in log.read_text(errors="replace")[len(before):].split("statement: ")[1:]]
    assert logged and logged[0].startswith("BEGIN READ ONLY"), logged[:3]
    assert not [statement for statement in logged[1:] if not statement.startswith(("SELECT", "COMMIT", "ROLLBACK"))]
