"""A corpus file: schema text a real tool printed (or a person wrote), with its ground truth from a real engine.

`catalog` maps each table and view to its columns in order, as the engine's own catalog lists them (`name` for the
default schema, `schema.name` otherwise); `queries` are known-correct queries, each run by that engine before it
is used (`hand_checked` says where no engine of that kind runs here and a person checked them)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from gateway.sql_check import check_sql, read_schema

Catalog = dict[str, tuple[str, ...]]


@dataclass(frozen=True)
class CorpusFile:
    name: str  # e.g. "postgres/pg_dump.sql"
    tool: str  # what printed it, with its version
    dialect: str  # the dialect its queries are checked in
    text: str
    catalog: Catalog
    queries: tuple[str, ...] = ()
    hand_written: bool = False  # the schema text is a fixture a person wrote (SQL Server: no engine here)
    hand_checked: bool = False  # the catalog and queries were checked by a person, not an engine
    notes: tuple[str, ...] = field(default=())


def model_catalog(text: str) -> Catalog:
    """What the gateway's one schema reader makes of `text`, in the catalog's shape."""
    return {table.qualified: tuple(column.name for column in table.columns) for table in read_schema(text).tables}


def judge(corpus_file: CorpusFile) -> dict[str, Any]:
    """Catalog equality and the known-correct queries' verdicts for one file."""
    read = model_catalog(corpus_file.text)
    missing = sorted(set(corpus_file.catalog) - set(read))
    extra = sorted(set(read) - set(corpus_file.catalog))
    different = sorted(name for name in set(read) & set(corpus_file.catalog) if read[name] != corpus_file.catalog[name])
    refused = []
    for query in corpus_file.queries:
        check = check_sql(query, schema=corpus_file.text, dialect=corpus_file.dialect)
        if not check.valid or check.verified != "compiled":
            refused.append({"query": query, "error_code": check.error_code, "verified": check.verified,
                            "problems": [problem.message for problem in check.problems][:3]})
    return {
        "file": corpus_file.name, "tool": corpus_file.tool, "dialect": corpus_file.dialect,
        "chars": len(corpus_file.text), "tables": len(corpus_file.catalog), "hand_written": corpus_file.hand_written,
        "hand_checked": corpus_file.hand_checked, "catalog_equal": not (missing or extra or different),
        "missing": missing, "extra": extra,
        "different": {name: {"engine": corpus_file.catalog[name], "read": read[name]} for name in different},
        "unreadable": [part.excerpt for part in read_schema(corpus_file.text).unreadable],
        "queries": len(corpus_file.queries), "queries_accepted": len(corpus_file.queries) - len(refused),
        "refused": refused,
    }
