"""Schema text in the shapes the model was trained and tested on, and what no engine here prints:

- Spider's rows (`shared/data/spider_dev_public.jsonl`, sql-create-context shape): each distinct context, with
  SQLite's catalog of it as the ground truth and gold answers SQLite prepares as the known-correct queries. One
  context has a name SQLite refuses unquoted (`Official_ratings_(millions)`); its ground truth is SQLite's catalog
  of the same text with that name double-quoted by hand;
- the seed's one-line style (`CREATE TABLE a (x INTEGER); CREATE TABLE b (...)`), SQLite's catalog as truth;
- SQL Server scripts (`GO`, `[brackets]`, SSMS's Generate Scripts): hand-written fixtures in tests/corpus/schemas,
  with hand-written catalogs and queries, since no SQL Server runs here."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

from benchmarks.schema_corpus.embedded import sqlite_catalog
from benchmarks.schema_corpus.files import CorpusFile

SPIDER = Path("/work/shared/data/spider_dev_public.jsonl")
FIXTURES = Path(__file__).resolve().parents[2] / "tests" / "corpus" / "schemas"
_ODD_NAMES = ("Official_ratings_(millions)",)  # quoted by hand for SQLite's ground truth (see above)

SEED = (
    ("CREATE TABLE head (age INTEGER, name VARCHAR, born_state VARCHAR); CREATE TABLE department "
     "(department_id VARCHAR, name VARCHAR, budget_in_billions VARCHAR)",
     ("SELECT COUNT(*) FROM head WHERE age > 56", "SELECT name, born_state FROM head ORDER BY age",
      "SELECT MAX(budget_in_billions) FROM department")),
    ("CREATE TABLE table_name_61 (position VARCHAR, pick VARCHAR, round VARCHAR)",
     ('SELECT position FROM table_name_61 WHERE pick = "23" AND round = "1"',)),
    ("CREATE TABLE singer (Singer_ID int, Name text, Country text, Song_Name text, Age int) "
     "CREATE TABLE concert (concert_ID int, concert_Name text, Stadium_ID int, Year text)",
     ("SELECT count(*) FROM singer", "SELECT T1.Name FROM singer AS T1 JOIN concert AS T2 ON T1.Singer_ID = "
                                     "T2.Stadium_ID")),
)


def _sqlite_truth(text: str, queries: list[str]) -> tuple[dict[str, tuple[str, ...]], tuple[str, ...]]:
    """SQLite's catalog of `text` and the queries it prepares against it."""
    runnable = text
    for name in _ODD_NAMES:
        runnable = runnable.replace(f" {name} ", f' "{name}" ')
    connection = sqlite3.connect(":memory:")
    try:
        for statement in runnable.replace(") CREATE", "); CREATE").split(";"):
            if statement.strip():
                connection.execute(statement)
        accepted = []
        for query in queries:
            try:
                connection.execute(f"EXPLAIN {query}")
            except sqlite3.Error:
                continue
            accepted.append(query)
        return sqlite_catalog(connection), tuple(accepted)
    finally:
        connection.close()


def spider_files(path: Path = SPIDER) -> list[CorpusFile]:
    if not path.exists():
        return []
    by_context: dict[str, list[str]] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip():
            row = json.loads(line)
            by_context.setdefault(row["context"], []).append(row["answer"])
    files = []
    for index, (context, answers) in enumerate(sorted(by_context.items())):
        truth, queries = _sqlite_truth(context, list(dict.fromkeys(answers)))
        files.append(CorpusFile(f"spider/context_{index}.sql", f"Spider dev ({path.name}), SQLite's catalog",
                                "sqlite", context, truth, queries))
    return files


def seed_files() -> list[CorpusFile]:
    files = []
    for index, (text, queries) in enumerate(SEED):
        truth, accepted = _sqlite_truth(text, list(queries))
        files.append(CorpusFile(f"seed/one_line_{index}.sql", "the seed's one-line style, SQLite's catalog", "sqlite",
                                text, truth, accepted))
    return files


def sqlserver_files(folder: Path = FIXTURES) -> list[CorpusFile]:
    files = []
    for script in sorted(folder.glob("sqlserver_*.sql")):
        meta = json.loads(script.with_suffix(".json").read_text(encoding="utf-8"))
        files.append(CorpusFile(f"sqlserver/{script.name}", meta["tool"], meta["dialect"],
                                script.read_text(encoding="utf-8"),
                                {name: tuple(columns) for name, columns in meta["catalog"].items()},
                                tuple(meta["queries"]), hand_written=True, hand_checked=True))
    return files
