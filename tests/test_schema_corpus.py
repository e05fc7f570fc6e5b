"""The schema corpus (benchmarks/schema_corpus): DDL printed by real tools at test time (pg_dump from a throwaway
PostgreSQL, mysqldump from a throwaway MariaDB, sqlite3's .schema, DuckDB's EXPORT DATABASE, SQLAlchemy's
CreateTable per dialect) plus Spider's rows, the seed's style and hand-written SQL Server scripts. For every file the
one schema reader must give exactly the engine's own catalog, read every statement, and accept and compile every
known-correct query (each prepared by that engine first)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from benchmarks.schema_corpus import CorpusFile, build, engines, judge

pytestmark = pytest.mark.slow

BY_ENGINE = {
    "postgres": ("postgres/source.sql", "postgres/pg_dump.sql", "sqlalchemy/postgresql.sql"),
    "mariadb": ("mariadb/source.sql", "mariadb/mysqldump.sql", "sqlalchemy/mysql.sql"),
}
IN_PROCESS = (
    "sqlite/source.sql", "sqlite/sqlite_master.sql", "sqlite/dot_schema.sql", "duckdb/source.sql",
    "duckdb/export_schema.sql", "sqlalchemy/sqlite.sql", "sqlalchemy/mssql.sql", "seed/one_line_0.sql",
    "seed/one_line_1.sql", "seed/one_line_2.sql", "sqlserver/sqlserver_script.sql", "sqlserver/sqlserver_ssms.sql",
    *(f"spider/context_{index}.sql" for index in range(9)),
)
NAMES = (*IN_PROCESS, *(name for names in BY_ENGINE.values() for name in names))


class Corpus:
    def __init__(self, files: list[CorpusFile], unavailable: dict[str, str]) -> None:
        self.files = {corpus_file.name: corpus_file for corpus_file in files}
        self.unavailable = unavailable

    def get(self, name: str) -> CorpusFile:
        for engine, names in BY_ENGINE.items():
            if name in names and engine in self.unavailable:
                pytest.skip(f"{engine} does not run here: {self.unavailable[engine]}")
        if name.startswith("sqlite/dot_schema") and name not in self.files:
            pytest.skip("the sqlite3 command line is not installed (Debian: apt-get install sqlite3)")
        if name.startswith("spider/") and name not in self.files:
            pytest.skip("the Spider rows are not on this machine")
        return self.files[name]


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Corpus]:
    folder: Path = tmp_path_factory.mktemp("schema-corpus")
    with engines() as servers:  # one PostgreSQL and one MariaDB for the whole module
        yield Corpus(build(folder, servers), servers.unavailable)


@pytest.mark.parametrize("name", NAMES)
def test_the_tables_and_columns_read_are_the_engine_s_own(corpus: Corpus, name: str) -> None:
    result = judge(corpus.get(name))
    assert result["catalog_equal"], {key: result[key] for key in ("missing", "extra", "different")}
    assert result["unreadable"] == []


@pytest.mark.parametrize("name", NAMES)
def test_known_correct_queries_are_accepted_and_compiled(corpus: Corpus, name: str) -> None:
    corpus_file = corpus.get(name)
    assert corpus_file.queries, "every corpus file carries known-correct queries"
    assert judge(corpus_file)["refused"] == []


def test_the_corpus_covers_every_tool_that_runs_here(corpus: Corpus) -> None:
    optional = {name for name in IN_PROCESS if name.startswith("spider/") or name == "sqlite/dot_schema.sql"}
    expected = {name for name in IN_PROCESS if name not in optional or name in corpus.files}
    for engine, names in BY_ENGINE.items():
        if engine not in corpus.unavailable:
            expected |= set(names)
    assert expected <= set(corpus.files)
    hand_written = [f.name for f in corpus.files.values() if f.hand_written]
    assert hand_written and all(name.startswith("sqlserver/") for name in hand_written)
