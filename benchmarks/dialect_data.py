"""The benchmark's data: small databases built from a row's schema, the same rows loaded into SQLite, DuckDB,
PostgreSQL and MariaDB, and each query's result read back in one comparable form.

Instances: gateway.synth's three (values from the question's and the queries' literals, keys that join, NULLs in
the second, 0 / negative numbers / an empty string / another letter case in the third), plus one of ours that
puts case variants of every text value next to it ('alpha' and 'ALPHA'), negative numbers and an empty string in
every table, so GROUP BY, DISTINCT, ORDER BY, = and min()/max() on text each meet a collation that ignores case.
Each engine's tables are `target_tables(schema, dialect)`: the names as the schema wrote them, value-preserving
types (what the gateway's own target check compiles against)."""

from __future__ import annotations

import datetime
import math
import re
import sqlite3
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from gateway.sql_check.meaning import read_schema
from gateway.sql_check.meaning.scope import affinity
from gateway.sql_check.meaning.spelling import written_identifier
from gateway.sql_check.target.ddl import quoted_table_name, table_ddl
from gateway.synth import Literals, build, from_queries, from_question, plan_tables
from gateway.synth.judge import request_seed, schema_columns

MAX_ROWS = 2_000  # a result larger than this is not compared (a cross join of every table)
_IDENTIFIER = re.compile(r"(id|_no|num|number|code)$", re.IGNORECASE)
Cell = Any
Rows = tuple[tuple[Cell, ...], ...]


@dataclass(frozen=True)
class TableData:
    name: str  # as the schema wrote it
    columns: tuple[str, ...]
    rows: tuple[tuple[Cell, ...], ...]


Instance = tuple[TableData, ...]


def instances(schema: str, question: str, queries: Sequence[str]) -> list[Instance]:
    """The row's databases, as plain data (the same for every engine)."""
    literals = Literals()
    from_question(question, literals)
    from_queries(list(queries), literals, schema_columns(schema))
    built = build(schema, literals, request_seed(schema, question))
    found = [_read_image(image) for image in built.images]
    if found:
        found.append(_edge_cases(found[0], schema))
    return found


def _read_image(image: bytes) -> Instance:
    connection = sqlite3.connect(":memory:")
    try:
        connection.deserialize(image)
        tables = []
        for (name,) in connection.execute("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY rowid"):
            cursor = connection.execute(f'SELECT * FROM "{name}"')
            columns = tuple(description[0] for description in cursor.description)
            tables.append(TableData(name, columns, tuple(cursor.fetchall())))
        return tuple(tables)
    finally:
        connection.close()


def _edge_cases(base: Instance, schema: str) -> Instance:
    """The first instance with every row doubled: the copy has a key of its own (keys stay unique, so a column
    that depends on the key still does), the same foreign keys (it joins where the original does), each ordinary
    text value in another letter case (every third an empty string) and every other number negated."""
    plans = {table.name.lower(): table for table in plan_tables(schema)}
    view = read_schema(schema)
    result = []
    for table in base:
        plan = plans.get(table.name.lower())
        refs = {ref[0] for ref in plan.refs} if plan else set()
        keys = {plan.key} if plan and plan.key else set()
        # Unique integer identifiers the synthesizer did not name a key (`contestant_number`) stay unique too.
        for position, column in enumerate(table.columns):
            values = [row[position] for row in table.rows]
            if (column.lower() not in refs and len(values) > 1 and _IDENTIFIER.search(column)
                    and all(isinstance(v, int) for v in values) and len(set(values)) == len(values)):
                keys.add(column.lower())
        declared = view.lookup(table.name).table
        kinds = [affinity(declared.column(c).type) if declared and declared.column(c) else None
                 for c in table.columns]
        extra = []
        for index, row in enumerate(table.rows):
            variant = list(row)
            for position, value in enumerate(row):
                name = table.columns[position].lower()
                if name in keys:
                    variant[position] = (value + 1000 if isinstance(value, int) else f"{value}_copy"
                                         if isinstance(value, str) else value)
                elif name in refs:
                    continue
                elif kinds[position] == "text" and isinstance(value, str):
                    variant[position] = value.swapcase() if index % 3 else ""
                elif kinds[position] in ("int", "real") and isinstance(value, int | float) and index % 2:
                    variant[position] = -value
            extra.append(tuple(variant))
        result.append(TableData(table.name, table.columns, (*table.rows, *extra)))
    return tuple(result)


# ---- loading -----------------------------------------------------------------------------------------------------

Execute = Callable[[str, Sequence[Cell]], None]


def load(instance: Instance, schema: str, dialect: str, execute: Execute, marker: str) -> None:
    """Create the schema's tables in `dialect` (SQLite: as the schema declares them) and insert the instance's
    rows; a column the synthesizer could not read (an odd name) stays NULL."""
    view = read_schema(schema)
    for table in instance:
        declared = view.lookup(table.name).table
        if declared is None or not declared.columns:
            continue
        if dialect == "sqlite":
            name = _sqlite_name(declared.name)
            body = ", ".join(f"{_sqlite_name(c.name)} {c.type}".strip() for c in declared.columns)
            execute(f"CREATE TABLE {name} ({body})", ())
            names = [_sqlite_name(c.name) for c in declared.columns]
        else:
            execute(table_ddl(declared, dialect), ())
            name = quoted_table_name(declared, dialect)
            names = [written_identifier(c.name, c.quote, dialect).sql(dialect) for c in declared.columns]
        positions = {column.lower(): index for index, column in enumerate(table.columns)}
        kinds = [affinity(c.type) for c in declared.columns]
        insert = f"INSERT INTO {name} ({', '.join(names)}) VALUES ({', '.join(marker for _ in names)})"
        for row in table.rows:
            values = [_for_engine(row[positions[c.name.lower()]] if c.name.lower() in positions else None, kind,
                                  dialect) for c, kind in zip(declared.columns, kinds, strict=True)]
            execute(insert, values)


def _sqlite_name(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _for_engine(value: Cell, kind: str | None, dialect: str) -> Cell:
    if value is None or dialect == "sqlite":
        return value
    if kind == "bool":
        return bool(value)
    if kind in ("int",) and isinstance(value, float) and value.is_integer():
        return int(value)
    if kind == "text" and not isinstance(value, str):
        return str(value)
    return value


# ---- comparing ------------------------------------------------------------------------------------------------------


def cell(value: Cell) -> Cell:
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, Decimal):
        value = float(value)
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        return int(value) if value.is_integer() else round(value, 6)
    if isinstance(value, datetime.datetime):
        return value.isoformat(sep=" ")
    if isinstance(value, datetime.date):
        return value.isoformat()
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value).hex()
    return value


def _key(row: tuple[Cell, ...]) -> tuple[tuple[int, str], ...]:
    return tuple((0, "") if value is None else (1, f"{type(value).__name__}:{value!r}") for value in row)


def comparable(rows: Sequence[Sequence[Cell]], ordered: bool) -> Rows:
    normal = [tuple(cell(value) for value in row) for row in rows]
    return tuple(normal if ordered else sorted(normal, key=_key))
