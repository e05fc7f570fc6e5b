"""The one reader of schema text: `read_schema(text) -> SchemaModel`, cached per text. Grounding, the compile
databases, the grammar, the transpiler's types, the chat route's schema finder and the prompt all read this model;
a second reader of schema text is a bug. Imports nothing of the gateway's but its own modules (a leaf package).

    model.py       the types: SchemaModel, Table (tables and views), Column, ForeignKey, Unreadable, Lookup
    lexer.py       comment- and quote-aware masking
    statements.py  the masked text split into statements
    kinds.py       what a statement is, from its first words
    names.py       names, dotted names and parenthesised lists in the masked text
    tables.py      CREATE TABLE: columns, types, keys, descriptions, options
    views.py       CREATE VIEW and CREATE TABLE ... AS: the query's columns
    alter.py       ALTER TABLE, COMMENT ON, DROP, RENAME TABLE
    reader.py      read_schema: every statement replayed in order; fingerprint; the prompt's text
    finder.py      schema statements in free text (the chat route)
    compiled.py    whether the hot modules above read with their compiled build (make install), built from these
"""

from gateway.schema_model import compiled

COMPILED = compiled.use(__path__)  # before any other module of the package is imported

from gateway.schema_model.finder import joined, schema_statements  # noqa: E402
from gateway.schema_model.model import (  # noqa: E402
    DEFAULT_SCHEMAS,
    Column,
    ForeignKey,
    Lookup,
    SchemaModel,
    Table,
    Unreadable,
)
from gateway.schema_model.reader import MAX_SCHEMA_CHARS, read_schema  # noqa: E402

__all__ = [
    "COMPILED",
    "DEFAULT_SCHEMAS",
    "MAX_SCHEMA_CHARS",
    "Column",
    "ForeignKey",
    "Lookup",
    "SchemaModel",
    "Table",
    "Unreadable",
    "joined",
    "read_schema",
    "schema_statements",
]
