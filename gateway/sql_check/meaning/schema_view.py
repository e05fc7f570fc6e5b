"""What the dialect step needs of the request's schema: each table and column as the schema wrote it (name, whether
it was quoted, declared type). One reader, memoised per text; issue 21's schema model replaces it when it lands
(the same field names: `name`, `quote`, `type`)."""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping
from dataclasses import dataclass

import sqlglot.expressions as exp
from sqlglot.errors import ParseError, TokenError

from gateway.sql_check.parsing import get_dialect
from gateway.sql_check.result import MAX_SCHEMA_CHARS
from gateway.sql_check.schema import create_table_statements, top_level_items, unquote

_PLAIN = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


@dataclass(frozen=True)
class Column:
    name: str
    type: str = ""  # as written ("" when the schema gives none)
    quote: str = ""  # '"' when the schema quoted the name, "" when it did not


@dataclass(frozen=True)
class Table:
    name: str
    columns: tuple[Column, ...]
    quote: str = ""

    def column(self, name: str) -> Column | None:
        wanted = name.lower()
        return next((column for column in self.columns if column.name.lower() == wanted), None)


@dataclass(frozen=True)
class SchemaView:
    tables: tuple[Table, ...]

    def table(self, name: str) -> Table | None:
        wanted = name.lower()
        return next((table for table in self.tables if table.name.lower() == wanted), None)

    def types(self) -> Mapping[str, Mapping[str, str]]:
        """Table -> column -> declared type, lower-cased names (the first definition of a name wins)."""
        found: dict[str, dict[str, str]] = {}
        for table in self.tables:
            columns = found.setdefault(table.name.lower(), {})
            for column in table.columns:
                columns.setdefault(column.name.lower(), column.type)
        return found


@functools.lru_cache(maxsize=128)
def read_schema(schema: str) -> SchemaView:
    """The tables of `schema` (CREATE TABLE text), as written; never raises."""
    if not schema or len(schema) > MAX_SCHEMA_CHARS:
        return SchemaView(())
    tables: dict[str, Table] = {}
    try:
        for statement in create_table_statements(schema):
            # What sqlglot can't read (a column named Official_ratings_(millions)) is read by hand.
            table = _parsed(statement) or _by_hand(statement)
            if table is not None:
                tables.setdefault(table.name.lower(), table)
    except (Exception, RecursionError):
        return SchemaView(tuple(tables.values()))
    return SchemaView(tuple(tables.values()))


def _parsed(statement: str) -> Table | None:
    try:
        parsed = get_dialect("sqlite").parse(statement)
    except (ParseError, TokenError, RecursionError, ValueError):
        return None
    create = parsed[0] if len(parsed) == 1 else None
    if not isinstance(create, exp.Create) or not isinstance(create.this, exp.Schema):
        return None
    table = create.this.this
    if not isinstance(table, exp.Table) or not table.name:
        return None
    columns = []
    for definition in create.this.expressions:
        if isinstance(definition, exp.ColumnDef) and not isinstance(definition.this, exp.Identifier):
            return None
        if isinstance(definition, exp.ColumnDef) and definition.name:
            kind = definition.args.get("kind")
            columns.append(Column(definition.name, kind.sql() if isinstance(kind, exp.DataType) else "",
                                  _quote(definition.this)))
    return Table(table.name, tuple(columns), _quote(table.this))


_HEAD = re.compile(r"""\s*CREATE\s+(?:TEMP(?:ORARY)?\s+)?TABLE\s+(?:IF\s+NOT\s+EXISTS\s+)?(?P<name>"[^"]+"|`[^`]+`|"""
                   r"""\[[^\]]+\]|[^\s(]+)\s*\((?P<body>.*)\)\s*$""", re.IGNORECASE | re.DOTALL)
_TYPE = re.compile(r"[A-Za-z]+(?:\s*\([0-9,\s]*\))?")
_CONSTRAINTS = frozenset({"primary", "foreign", "unique", "check", "constraint", "key", "index"})


def _by_hand(statement: str) -> Table | None:
    head = _HEAD.match(statement)
    if head is None:
        return None
    columns = []
    for item in top_level_items(head.group("body")):
        words = item.split()
        if not words or words[0].lower() in _CONSTRAINTS:
            continue
        name, declared = (" ".join(words[:-1]), words[-1]) if len(words) > 1 and _TYPE.fullmatch(words[-1]) else (
            item, "")
        columns.append(Column(unquote(name), declared, '"' if name != unquote(name) else _quote_if_needed(name)))
    name = head.group("name").split(".")[-1]
    return Table(unquote(name), tuple(columns), '"' if name != unquote(name) else _quote_if_needed(name))


def _quote(identifier: object) -> str:
    return '"' if isinstance(identifier, exp.Identifier) and identifier.quoted else ""


def _quote_if_needed(name: str) -> str:
    return "" if _PLAIN.fullmatch(name) else '"'
