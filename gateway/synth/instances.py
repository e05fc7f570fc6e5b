"""Small SQLite databases synthesized from a request's schema, to run candidate queries on (there is no live
database: only the pasted DDL).

Per schema and question, a few instances of growing size, deterministic (the same request gets the same rows):
- columns keep their declared types (SQLite affinity decides comparisons, as in the analyst's database);
- key columns are unique (`id`, `<table>_id`, `<table>id`, or an `…id` column whose prefix names the table);
- foreign keys point at existing parent keys (declared ones where the schema reader knows them, and the
  `x_id`→`x.id` / same-named-key pairs a model joins on), so joins meet;
- columns with the same name share one pool of values across tables;
- the literals of the question and of the candidates appear in the rows (bound ones in their own column, with
  neighbours above and below for numbers, so `=`, `<` and `>` each select some rows and not others);
- the second instance holds NULLs, the third edge values (0, negatives, an empty string, other letter case);
- values in a column are mostly distinct (few ties for ORDER BY … LIMIT), text repeats (GROUP BY has groups).
"""

from __future__ import annotations

import functools
import hashlib
import random
import sqlite3
import threading
from collections.abc import Sequence
from dataclasses import dataclass

from gateway.schema_model import read_schema
from gateway.sql_check.schema_db import quote_identifier
from gateway.synth.literals import Literals, Value

SIZES = (4, 7, 12)  # rows per table in each instance
WORDS = ("alpha", "Bravo", "charlie", "Delta", "echo", "Foxtrot", "golf", "Hotel", "india", "Juliet")
DATES = ("2019-03-14", "2020-07-01", "2021-01-31", "2021-12-24", "2022-06-15", "2023-02-28", "2024-10-05")


@dataclass(frozen=True)
class SynthColumn:
    name: str
    type_text: str
    family: str  # int, real, date, bool, text


@dataclass(frozen=True)
class SynthTable:
    name: str
    columns: tuple[SynthColumn, ...]
    key: str | None  # the column holding unique ids, lower-cased
    refs: tuple[tuple[str, str, str], ...]  # (column lower, parent table lower, parent key lower)


def family(type_text: str) -> str:
    upper = type_text.upper()
    if "INT" in upper:
        return "int"
    if any(word in upper for word in ("REAL", "FLOA", "DOUB", "DEC", "NUM")):
        return "real"
    if "DATE" in upper or "TIME" in upper:
        return "date"
    if "BOOL" in upper:
        return "bool"
    return "text"


def _stems(table: str) -> set[str]:
    name = table.lower()
    stems = {name, name.rstrip("s"), name.removesuffix("es"), name.replace("_", "")}
    return {stem for stem in stems if len(stem) >= 2}


def _key_prefix(column: str) -> str | None:
    lower = column.lower()
    for suffix in ("_id", "id"):
        if lower.endswith(suffix) and len(lower) > len(suffix):
            return lower[: -len(suffix)].rstrip("_")
    return None


@functools.lru_cache(maxsize=256)
def plan_tables(schema: str) -> tuple[SynthTable, ...]:
    """The schema's tables with their key and foreign-key guesses (memoised per schema text): the schema model's
    (gateway/schema_model) tables and views, one per name (the same name in two schemas: the first)."""
    read = list({table.name.lower(): table for table in reversed(read_schema(schema).tables)}.values())[::-1]
    keys: dict[str, str | None] = {}
    for table in read:
        names = [column.name.lower() for column in table.columns]
        stems = _stems(table.name)
        declared = table.primary_key[0].lower() if len(table.primary_key) == 1 else None
        key = declared if declared in names else next((name for name in names if name == "id"), None)
        if key is None:
            key = next((name for name in names
                        if (prefix := _key_prefix(name)) is not None
                        and any(stem.startswith(prefix) or prefix.startswith(stem) for stem in stems)), None)
        keys[table.name.lower()] = key
    owners = {key: table for table, key in keys.items() if key is not None and key != "id"}
    planned = []
    for table in read:
        lower = table.name.lower()
        refs = []
        declared_refs = {key.columns[0].lower(): key.table.lower() for key in table.foreign_keys
                         if len(key.columns) == 1}
        for column in table.columns:
            name = column.name.lower()
            if name == keys[lower]:
                continue
            parent = declared_refs.get(name) if declared_refs.get(name) in keys else owners.get(name)
            if parent is None and (prefix := _key_prefix(name)) is not None:
                parent = next((other for other in keys if other != lower and keys[other] == "id"
                               and prefix in _stems(other)), None)
            if parent is not None and parent != lower and keys[parent] is not None:
                refs.append((name, parent, keys[parent] or "id"))
        columns = tuple(SynthColumn(c.name, c.type, family(c.type)) for c in table.columns)
        planned.append(SynthTable(table.name, columns, keys[lower], tuple(refs)))
    return tuple(planned)


def _seed(*parts: object) -> int:
    return int.from_bytes(hashlib.sha256(repr(parts).encode()).digest()[:8], "big")


def _pool(column: SynthColumn, size: int, instance: int, seed: int, literals: Literals) -> list[Value]:
    """Values for one column, shared by every table that has a column of this name."""
    rng = random.Random(_seed(seed, instance, column.name.lower(), column.family))
    bound = literals.bound.get(column.name.lower(), [])
    numbers = [v for v in bound if isinstance(v, int | float) and not isinstance(v, bool)]
    strings = [v for v in bound if isinstance(v, str)]
    values: list[Value]
    if column.family in ("int", "real"):
        base: list[Value] = list(rng.sample(range(1, 90), size))
        for number in numbers:  # the literal and its neighbours: each comparison splits the rows
            base[:0] = [number, number + 1, number - 1] if column.family == "int" else [number, number + 0.5,
                                                                                         number - 0.5]
        if column.family == "real":
            base = [value + 0.25 if isinstance(value, int) else value for value in base]
        if instance == 2:
            base[-2:] = [0, -7]
        values = base
    elif column.family == "date":
        values = [*strings, *rng.sample(DATES, min(size, len(DATES)))]
    elif column.family == "bool":
        values = [0, 1]
    else:
        unbound = [v for v in literals.unbound if isinstance(v, str)]
        words = rng.sample(WORDS, max(2, (size + 1) // 2))  # fewer words than rows: groups form
        values = [*strings, *unbound, *words]
        if instance == 2 and strings:
            values[-2:] = [strings[0].swapcase(), ""]
    return values


def _rows(table: SynthTable, size: int, instance: int, seed: int, literals: Literals,
          parents: dict[str, list[Value]]) -> list[tuple[Value | None, ...]]:
    refs = {column: (parent, key) for column, parent, key in table.refs}
    rng = random.Random(_seed(seed, instance, table.name.lower()))
    columns: list[list[Value | None]] = []
    for column in table.columns:
        name = column.name.lower()
        if name == table.key:
            cells: list[Value | None] = list(range(1, size + 1)) if column.family != "text" else [
                f"{table.name[:3].lower()}{n}" for n in range(1, size + 1)]
        elif name in refs and parents.get(refs[name][0]):
            parent_keys = parents[refs[name][0]]
            cells = [parent_keys[(n * 7 + instance) % len(parent_keys)] if n < len(parent_keys)
                     else rng.choice(parent_keys) for n in range(size)]
        else:
            pool = _pool(column, size, instance, seed, literals)
            # Literals first (each appears at least once), then the pool's other values in a fixed shuffle.
            head = min(len(pool), size)
            cells = [*pool[:head], *(pool[rng.randrange(len(pool))] for _ in range(size - head))]
            rng.shuffle(cells)
        if instance == 1 and name != table.key and name not in refs and size > 1:
            cells[-1] = None  # NULLs in ordinary columns only: keys and the keys rows join on stay whole
        columns.append(cells)
    return list(zip(*columns, strict=True)) if columns else []


@dataclass(frozen=True)
class Instances:
    """Serialized SQLite databases, one per size; `tables` were built (others could not be)."""

    images: tuple[bytes, ...]
    tables: tuple[str, ...]


def build(schema: str, literals: Literals, seed: int, sizes: Sequence[int] = SIZES) -> Instances:
    """The instances for this schema and these literals (deterministic for the same inputs)."""
    return _build(schema, literals.key(), seed, tuple(sizes), literals)


# The last few requests' instances (a cache hit re-checked, or the same request again, reuses them); keyed by what
# decides the rows, since the literals themselves are not hashable.
_BUILT: dict[tuple[str, tuple[object, ...], int, tuple[int, ...]], Instances] = {}
_BUILT_LIMIT = 64
_BUILT_LOCK = threading.Lock()  # votes run in worker threads


def _build(schema: str, key: tuple[object, ...], seed: int, sizes: tuple[int, ...], literals: Literals) -> Instances:
    cache_key = (schema, key, seed, sizes)
    with _BUILT_LOCK:
        cached = _BUILT.get(cache_key)
    if cached is not None:
        return cached
    tables = plan_tables(schema)
    images = []
    built: list[str] = []
    for instance, size in enumerate(sizes):
        connection = sqlite3.connect(":memory:", isolation_level=None)
        try:
            parents: dict[str, list[Value]] = {}
            # Parents first, so a child's foreign keys can take their keys.
            ordered = sorted(tables, key=lambda t: len(t.refs))
            for table in ordered:
                if not table.columns or not _create(connection, table):
                    continue
                rows = _rows(table, size, instance, seed, literals, parents)
                placeholders = ", ".join("?" for _ in table.columns)
                connection.executemany(f"INSERT INTO {quote_identifier(table.name)} VALUES ({placeholders})", rows)
                if table.key is not None:
                    index = [c.name.lower() for c in table.columns].index(table.key)
                    parents[table.name.lower()] = [cell for row in rows if (cell := row[index]) is not None]
                if instance == 0:
                    built.append(table.name)
            if built:  # SQLite cannot serialize a database that holds nothing (no table could be built)
                images.append(connection.serialize())
        finally:
            connection.close()
    result = Instances(tuple(images), tuple(built))
    with _BUILT_LOCK:
        if len(_BUILT) >= _BUILT_LIMIT:
            _BUILT.pop(next(iter(_BUILT)))
        _BUILT[cache_key] = result
    return result


def _create(connection: sqlite3.Connection, table: SynthTable) -> bool:
    """The table with its declared types (their affinity decides comparisons); without types if SQLite refuses."""
    typed = ", ".join(f"{quote_identifier(c.name)} {_safe_type(c.type_text)}".rstrip() for c in table.columns)
    bare = ", ".join(quote_identifier(c.name) for c in table.columns)
    for columns in (typed, bare):
        try:
            connection.execute(f"CREATE TABLE {quote_identifier(table.name)} ({columns})")
            return True
        except sqlite3.Error:
            continue
    return False


def _safe_type(type_text: str) -> str:
    """A declared type SQLite accepts as written: letters, digits, spaces, parentheses and commas only."""
    return type_text if all(ch.isalnum() or ch in " (),_" for ch in type_text) else ""
