"""The tables of a schema as the scope step sees them: each one's own CREATE TABLE text (sent whole or not at
all), its name and column words, and the tables it joins to."""

from __future__ import annotations

import functools
from dataclasses import dataclass

from gateway.schema_model import read_schema
from gateway.scope.words import name_words
from gateway.synth.instances import plan_tables


@dataclass(frozen=True)
class ScopeTable:
    name: str  # as written, without quotes
    text: str  # its CREATE TABLE statement as written
    words: frozenset[str]  # of its name
    columns: tuple[tuple[str, frozenset[str], str], ...]  # (name, its words, declared type)
    joins: frozenset[str]  # lower-cased names of the tables it references or that reference it


@functools.lru_cache(maxsize=32)
def scope_tables(schema: str) -> tuple[ScopeTable, ...]:
    """Every table (and view) whose statement could be read, in schema order (memoised per schema text)."""
    links: dict[str, set[str]] = {}
    for planned in plan_tables(schema):
        for _, parent, _ in planned.refs:
            links.setdefault(planned.name.lower(), set()).add(parent)
            links.setdefault(parent, set()).add(planned.name.lower())
    tables: dict[str, ScopeTable] = {}
    for table in read_schema(schema).tables:  # the one schema model: tables and views, as their statements wrote them
        if table.name.lower() in tables:
            continue  # the same name in another schema: the first (the scope speaks of names, not schemas)
        tables[table.name.lower()] = ScopeTable(
            name=table.name, text=table.text, words=name_words(table.name),
            columns=tuple((c.name, name_words(c.name), c.type) for c in table.columns),
            joins=frozenset(links.get(table.name.lower(), ())),
        )
    return tuple(tables.values())
