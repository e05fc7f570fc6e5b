"""The tables of a schema as the scope step sees them: each one's own CREATE TABLE text (sent whole or not at
all), its name and column words, and the tables it joins to."""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass

from gateway.schema_model import read_schema
from gateway.scope.words import name_words, stem
from gateway.synth.instances import plan_tables


@dataclass(frozen=True)
class ScopeTable:
    name: str  # as written, without quotes
    text: str  # its CREATE TABLE statement as written
    words: frozenset[str]  # of its name
    columns: tuple[tuple[str, frozenset[str], str], ...]  # (name, its words, declared type)
    joins: frozenset[str]  # lower-cased names of the tables it references or that reference it


_KEY_SUFFIX = re.compile(r"(?:_[iI][dD]|(?<=[a-z0-9])I[dD]|(?<=[A-Z])ID)$")  # course_id, StuID, CourseId; not "paid"


def _singular(name: str) -> str:
    return stem(name.lower().replace("_", ""))


@functools.lru_cache(maxsize=32)
def scope_tables(schema: str) -> tuple[ScopeTable, ...]:
    """Every table (and view) whose statement could be read, in schema order (memoised per schema text)."""
    links: dict[str, set[str]] = {}

    def link(child: str, parent: str) -> None:
        links.setdefault(child, set()).add(parent)
        links.setdefault(parent, set()).add(child)

    for planned in plan_tables(schema):
        for _, parent, _ in planned.refs:
            link(planned.name.lower(), parent)
    read = read_schema(schema).tables
    named = {_singular(table.name): table.name.lower() for table in reversed(read)}
    for table in read:  # `course_id` joins `course` even where the key guesses above gave it another owner
        for column in table.columns:
            key_of = _KEY_SUFFIX.sub("", column.name)
            named_parent = named.get(_singular(key_of)) if key_of and key_of != column.name else None
            if named_parent is not None and named_parent != table.name.lower():
                link(table.name.lower(), named_parent)
    tables: dict[str, ScopeTable] = {}
    for table in read:  # the one schema model: tables and views, as their statements wrote them
        if table.name.lower() in tables:
            continue  # the same name in another schema: the first (the scope speaks of names, not schemas)
        tables[table.name.lower()] = ScopeTable(
            name=table.name, text=table.text, words=name_words(table.name),
            columns=tuple((c.name, name_words(c.name), c.type) for c in table.columns),
            joins=frozenset(links.get(table.name.lower(), ())),
        )
    return tuple(tables.values())
