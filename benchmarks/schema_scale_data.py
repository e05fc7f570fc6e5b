"""Warehouse-sized schemas from the public rows: each row's own tables plus distractor tables from the other
databases, up to 10, 50 or 200 tables in all. The other databases hold ~30 tables, so past that the distractors
are copies of theirs under the prefixes a warehouse gives its layers (`stg_`, `dim_`, `hist_`, ...): names a
question word can still meet, as in a real catalog. The row's own tables are never copied, and every schema is
the same for the same row and size (seeded shuffle)."""

from __future__ import annotations

import functools
import random
import re
from collections.abc import Sequence
from dataclasses import dataclass

import sqlglot
import sqlglot.expressions as exp
from sqlglot.errors import SqlglotError

from gateway.schema_model import read_schema

PREFIXES = ("stg_", "dim_", "fact_", "hist_", "ods_", "tmp_", "raw_", "mart_", "ext_", "bak_", "v2_", "old_")
_HEAD_NAME = re.compile(r"(CREATE\s+TABLE\s+)(\"[^\"]+\"|`[^`]+`|\[[^\]]+\]|[^\s(]+)", re.IGNORECASE)


@dataclass(frozen=True)
class ScaledRow:
    row: dict[str, object]
    schema: str  # own tables and distractors, shuffled together
    tables: int
    gold_tables: frozenset[str]  # lower-cased table names the gold query reads


def gold_tables(sql: str) -> frozenset[str]:
    try:
        tree = sqlglot.parse_one(sql, read="sqlite")
    except (SqlglotError, ValueError):
        return frozenset()
    ctes = {cte.alias_or_name.lower() for cte in tree.find_all(exp.CTE)}
    return frozenset(t.name.lower() for t in tree.find_all(exp.Table) if t.name and t.name.lower() not in ctes)


@functools.lru_cache(maxsize=64)
def _statements(schema: str) -> tuple[tuple[str, str], ...]:
    """(table name lower, statement) of one database's schema."""
    return tuple((table.name.lower(), table.text) for table in read_schema(schema).tables)


def _renamed(statement: str, prefix: str) -> str:
    return _HEAD_NAME.sub(lambda m: m.group(1) + prefix + m.group(2).strip('"`[]'), statement, count=1)


def scaled(rows: Sequence[dict[str, object]], size: int, pool_rows: Sequence[dict[str, object]] | None = None
           ) -> list[ScaledRow]:
    """Every row with `size` tables in its schema (its own tables count; fewer own tables than that always); the
    distractors come from the databases of `pool_rows` (default: `rows`)."""
    databases: dict[str, str] = {}
    for row in pool_rows or rows:
        databases.setdefault(str(row["db_id"]), str(row["context"]))
    out = []
    for index, row in enumerate(rows):
        own = list(_statements(str(row["context"])))
        others = [item for db, schema in databases.items() if db != row["db_id"] for item in _statements(schema)]
        taken = {name for name, _ in own}
        pool = [(name, text) for name, text in others if name not in taken]
        distractors: list[str] = []
        rng = random.Random(f"{index}:{size}")
        rng.shuffle(pool)
        layer = 0
        while len(own) + len(distractors) < size and pool:
            prefix = "" if layer == 0 else PREFIXES[(layer - 1) % len(PREFIXES)] + (str(layer) if layer > 12 else "")
            for name, text in pool:
                if len(own) + len(distractors) >= size:
                    break
                if prefix + name not in taken:
                    distractors.append(_renamed(text, prefix) if prefix else text)
                    taken.add(prefix + name)
            layer += 1
        statements = [text for _, text in own] + distractors
        rng.shuffle(statements)
        out.append(ScaledRow(row, "; ".join(statements), len(statements), gold_tables(str(row["answer"]))))
    return out
