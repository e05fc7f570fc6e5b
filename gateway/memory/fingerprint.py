"""The schema fingerprint that keys verified queries: tables, columns and their types, not whitespace, comments,
order or quoting. A verified query is only ever used for the schema it was verified on.

The ONE function the memory calls: issue 21's typed schema model will provide the fingerprint; when it lands, this
body switches to it (and FINGERPRINT_VERSION changes, so pairs keyed by the old digest are simply not found)."""

from __future__ import annotations

import hashlib

import orjson

from gateway.sql_check.schema_db import schema_tables

FINGERPRINT_VERSION = "1"


def schema_fingerprint(schema: str) -> str:
    """A digest of the schema's tables, columns and types, each lower-cased, sorted."""
    read = schema_tables(schema)
    tables = sorted(
        (table.name.lower(), sorted((column.name.lower(), " ".join(column.type_text.lower().split()))
                                    for column in table.columns))
        for table in read.tables)
    # Statements the reader could not take still count: a change in them is a change of schema.
    unreadable = sorted(" ".join(text.lower().split()) for text in read.unreadable)
    return hashlib.sha256(orjson.dumps([FINGERPRINT_VERSION, tables, unreadable])).hexdigest()[:32]


def schema_columns(schema: str) -> frozenset[str]:
    """Every column name of the schema, lower-cased (tells SQLite's double-quoted strings from column names)."""
    return frozenset(column.name.lower() for table in schema_tables(schema).tables for column in table.columns)
