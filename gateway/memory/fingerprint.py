"""The schema fingerprint that keys verified queries: tables, columns and their types, not layout, comments, case
or the order of the tables. A verified query is only ever used for the schema it was verified on.

The ONE function the memory calls; it is the schema model's own fingerprint (gateway/schema_model, issue 21), so
the memory and every other reader agree on what "the same schema" means."""

from __future__ import annotations

from gateway.schema_model import read_schema


def schema_fingerprint(schema: str) -> str:
    """A digest of the schema's tables (and views), columns and types."""
    return read_schema(schema).fingerprint


def schema_names(schema: str) -> frozenset[str]:
    """Every table and column name of the schema, lower-cased: a double-quoted word that is none of them is
    SQLite's string (`name = "John"`), one that is one of them is a name."""
    model = read_schema(schema)
    return frozenset({table.name.lower() for table in model.tables}
                     | {column.name.lower() for table in model.tables for column in table.columns})
