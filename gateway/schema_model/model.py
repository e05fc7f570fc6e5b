"""The schema model's types: what one request's schema text defines. A leaf: imports nothing of the gateway's.

Names are kept as the schema wrote them (without their quotes; `quote` says which quote it used), and looked up
without case, as SQLite does and as every step of the check compares them."""

from __future__ import annotations

import functools
import hashlib
from dataclasses import dataclass, field, fields
from typing import Literal, NamedTuple

# Schemas a bare name means anyway: `public.t` (PostgreSQL), `dbo.t` (SQL Server), `main.t` (SQLite, DuckDB).
DEFAULT_SCHEMAS: frozenset[str] = frozenset({"public", "dbo", "main"})

TableKind = Literal["table", "view"]


class Column(NamedTuple):
    """A tuple, not a dataclass: a 1,000-table dump makes thousands, and a tuple is built twice as fast."""

    name: str
    type: str = ""  # as written, whitespace collapsed; "" when the schema gives none
    quote: str = ""  # "", '"', "`" or "[": how the schema wrote the name
    description: str | None = None


@dataclass(frozen=True)
class ForeignKey:
    columns: tuple[str, ...]
    table: str  # the referenced table's name, as written
    table_schema: str  # its schema ("" for the default one)
    ref_columns: tuple[str, ...]


@dataclass(frozen=True)
class Table:
    """A table or a view. `schema` is the qualifier as written ("" for none or a default schema such as
    `public`); `types_known` is false where a column's type had to be guessed (a view's computed column)."""

    name: str
    columns: tuple[Column, ...]
    schema: str = ""
    quote: str = ""
    kind: TableKind = "table"
    primary_key: tuple[str, ...] = ()
    foreign_keys: tuple[ForeignKey, ...] = ()
    description: str | None = None
    text: str = ""  # the statement that defines it, as written
    types_known: bool = True
    catalog: str = ""  # a database name before the schema (`db.dbo.t`), as written

    @property
    def key(self) -> tuple[str, str]:
        return (self.schema.lower(), self.name.lower())

    @property
    def qualified(self) -> str:
        """`sales.orders`, or `orders` in the default schema: how a person reads the name."""
        return f"{self.schema}.{self.name}" if self.schema else self.name

    def column(self, name: str) -> Column | None:
        wanted = name.lower()
        return next((column for column in self.columns if column.name.lower() == wanted), None)

    @functools.cached_property
    def _names(self) -> frozenset[str]:
        return frozenset(column.name.lower() for column in self.columns)

    def column_names(self) -> frozenset[str]:
        return self._names


def built_table(name: str, columns: tuple[Column, ...], schema: str, quote: str, kind: TableKind,
                primary_key: tuple[str, ...], foreign_keys: tuple[ForeignKey, ...], description: str | None,
                text: str, types_known: bool, catalog: str) -> Table:
    """Table(...) for the reader, which builds a thousand for a big dump: the same object, its fields set in one
    step, where a frozen dataclass's __init__ calls `object.__setattr__` for each (three times slower). (Table has
    no __post_init__ to skip; the check below keeps the two in step.)"""
    table = object.__new__(Table)
    table.__dict__.update(name=name, columns=columns, schema=schema, quote=quote, kind=kind, primary_key=primary_key,
                          foreign_keys=foreign_keys, description=description, text=text, types_known=types_known,
                          catalog=catalog)
    return table


if built_table.__code__.co_varnames[:built_table.__code__.co_argcount] != tuple(f.name for f in fields(Table)):
    raise TypeError("built_table must take Table's fields, in their order")


@dataclass(frozen=True)
class Unreadable:
    """A statement the reader could not read, or not wholly: `name` is the object it seems to define (None when
    not even that could be told), so a query that reads that object can be refused naming this statement."""

    text: str
    reason: str
    name: str | None = None
    schema: str = ""

    @property
    def excerpt(self) -> str:
        flat = " ".join(self.text.split())
        return flat if len(flat) <= 80 else flat[:77] + "..."


@dataclass(frozen=True)
class Lookup:
    """What a table reference in a query names: one table, several (the same name in two schemas, unqualified),
    a statement that could not be read, or nothing."""

    table: Table | None = None
    ambiguous: tuple[Table, ...] = ()
    unreadable: Unreadable | None = None


@dataclass(frozen=True)
class SchemaModel:
    tables: tuple[Table, ...]  # tables and views, in the order the text defines them
    unreadable: tuple[Unreadable, ...] = ()
    prompt_text: str = ""  # the definitions the model is shown (the text itself when it holds nothing else)
    _by_name: dict[str, tuple[Table, ...]] = field(default_factory=dict, repr=False, compare=False)

    def __post_init__(self) -> None:
        by_name: dict[str, list[Table]] = {}
        for table in self.tables:
            by_name.setdefault(table.name.lower(), []).append(table)
        self._by_name.update({name: tuple(tables) for name, tables in by_name.items()})

    @functools.cached_property
    def fingerprint(self) -> str:
        """Tables (and views), columns and types, hashed: the same for layout, comments, keyword case, name case
        and the order of the tables; different for anything a query's meaning depends on."""
        lines = sorted(
            f"{table.kind}|{table.schema.lower()}|{table.name.lower()}|"
            + ",".join(f"{column.name.lower()}:{' '.join(column.type.upper().split())}" for column in table.columns)
            for table in self.tables)
        lines += sorted("?" + " ".join(part.text.split()) for part in self.unreadable)
        return hashlib.sha256("\n".join(lines).encode("utf-8")).hexdigest()

    @property
    def readable(self) -> bool:
        """Whether anything at all could be read."""
        return bool(self.tables)

    def schemas(self) -> frozenset[str]:
        """The (lower-cased) schema qualifiers the text declares, besides the default one."""
        return frozenset(table.schema.lower() for table in self.tables if table.schema)

    def qualifiers(self) -> frozenset[str]:
        """Every (lower-cased) schema or database name the text qualifies a table with."""
        return self._qualifiers

    @functools.cached_property
    def _qualifiers(self) -> frozenset[str]:  # asked on every check: computed once per model
        names = {part.lower() for table in self.tables for part in (table.schema, table.catalog) if part}
        return frozenset(names | {part.schema.lower() for part in self.unreadable if part.schema})

    def lookup(self, name: str, schema: str = "") -> Lookup:
        """The table a query's `schema.name` (or bare `name`) reads. A bare name means the default schema's
        table, else the one table of that name in any schema; a default qualifier (`public`) means no qualifier."""
        wanted_schema = "" if schema.lower() in DEFAULT_SCHEMAS else schema.lower()
        candidates = self._by_name.get(name.lower(), ())
        if schema and wanted_schema:
            found = [table for table in candidates if table.schema.lower() == wanted_schema]
        else:
            found = [table for table in candidates if not table.schema] or list(candidates)
        if len(found) == 1:
            return Lookup(table=found[0])
        if found:
            return Lookup(ambiguous=tuple(found))
        return Lookup(unreadable=self._unreadable_for(name.lower(), wanted_schema))

    def _unreadable_for(self, name: str, schema: str) -> Unreadable | None:
        nameless = None
        for part in self.unreadable:
            if part.name is None:
                nameless = nameless or part
            elif part.name.lower() == name and (not schema or part.schema.lower() in ("", schema)):
                return part
        # A statement whose object could not even be named may be the one defining this table.
        return nameless
