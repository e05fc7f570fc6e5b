"""The schema corpus: real DDL printed by real tools, each file with its ground truth from a real engine
(files.py says what a file holds). `make schemas` (benchmarks/schemas.py) and tests/test_schema_corpus.py read the
same files, generated at run time (PostgreSQL and MariaDB: the throwaway servers of benchmarks/engine_servers.py):

    postgres_corpus.py    pg_dump --schema-only from a throwaway server (and a 1,000-table dump for timing)
    mariadb_corpus.py     mysqldump --no-data from a throwaway MariaDB
    embedded.py           SQLite's .schema and sqlite_master, DuckDB's EXPORT DATABASE
    sqlalchemy_corpus.py  SQLAlchemy's CreateTable per dialect
    handwritten.py        Spider's rows, the seed's one-line style, SQL Server scripts (hand-written fixtures)
    hostile.py            SQL that asks the check's engines for huge output or unbounded work
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

from benchmarks.engine_servers import (
    EngineUnavailable,
    ThrowawayMariaDB,
    ThrowawayPostgres,
    throwaway_mariadb,
    throwaway_postgres,
)
from benchmarks.schema_corpus import embedded, handwritten, mariadb_corpus, postgres_corpus, sqlalchemy_corpus
from benchmarks.schema_corpus.files import CorpusFile, judge

__all__ = ["CorpusFile", "Engines", "build", "engines", "judge"]


class Engines:
    """The servers that started here, and why the others did not."""

    def __init__(self) -> None:
        self.postgres: ThrowawayPostgres | None = None
        self.mariadb: ThrowawayMariaDB | None = None
        self.unavailable: dict[str, str] = {}


@contextmanager
def engines() -> Iterator[Engines]:
    found = Engines()
    with ExitStack() as stack:
        for name, running in (("postgres", throwaway_postgres), ("mariadb", throwaway_mariadb)):
            try:
                setattr(found, name, stack.enter_context(running()))
            except EngineUnavailable as error:
                found.unavailable[name] = str(error)
        yield found


def build(folder: Path, servers: Engines) -> list[CorpusFile]:
    """Every corpus file the tools on this machine can produce."""
    files = [*embedded.sqlite_files(folder), *embedded.duckdb_files(folder)]
    if servers.postgres is not None:
        files += postgres_corpus.files(servers.postgres)
    if servers.mariadb is not None:
        files += mariadb_corpus.files(servers.mariadb)
    files += sqlalchemy_corpus.files(servers.postgres, servers.mariadb)
    files += handwritten.spider_files() + handwritten.seed_files() + handwritten.sqlserver_files()
    return files
