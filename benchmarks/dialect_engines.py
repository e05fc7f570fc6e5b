"""Do the transpiled answers run? The gold SQL of a benchmark file, transpiled from SQLite to DuckDB and
PostgreSQL by `gateway.sql_check.transpile_sql`, compiled on the real engine against the row's schema (EXPLAIN,
no data). The pass rate counts the answers that compile in SQLite (the model's dialect) as the base.

    python -m benchmarks.dialect_engines [--data FILE] [--engines duckdb,postgres] [--baseline]
                                         [--out reports/dialect_engines.json]

DuckDB runs in memory. PostgreSQL is a throwaway cluster in a temporary folder: initdb, a server listening on a
unix socket only (no TCP), run as the `postgres` user when this runs as root (the server refuses root), stopped
and removed at the end. docs/eval.md ("SQL in the analyst's dialect") quotes the figures."""

from __future__ import annotations

import argparse
import glob
import json
import os
import re
import shutil
import sqlite3
import subprocess
import sys
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import sqlglot

from gateway.sql_check import check_sql, read_schema
from gateway.sql_check.transpile import transpile_sql
from gateway.sql_check.transpiled import TranspileRefused

DEFAULT_DATA = Path("/work/shared/data/spider_dev_public.jsonl")
ENGINES = ("duckdb", "postgres")
_PG_TIMEOUT_S = 60


@dataclass(frozen=True)
class Row:
    index: int
    context: str
    answer: str


@dataclass
class EngineFigures:
    engine: str
    base: int = 0  # answers that compile in SQLite
    refused_by_transpile: int = 0
    refused_by_guard: int = 0
    compiled: int = 0  # transpiled and compiled on the engine
    failures: list[dict[str, Any]] = field(default_factory=list)

    @property
    def pass_rate(self) -> float:
        return self.compiled / self.base if self.base else 0.0

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "pass_rate": round(self.pass_rate, 4)}


# --- the schema, built the same way on every engine ------------------------------------------------------------


def quoted_schema(context: str) -> list[str]:
    """Each table of `context` (read by the gateway's one schema reader) with every name double-quoted: SQLite text
    that any file of the sql-create-context shape turns into, including names that are not valid unquoted
    (`Official_ratings_(millions)`)."""
    statements = []
    for table in read_schema(context).tables:
        body = ", ".join(f'"{column.name}" {column.type or "TEXT"}' for column in table.columns)
        statements.append(f'CREATE TABLE "{table.name}" ({body})')
    return statements


def engine_schema(context: str, engine: str) -> list[str]:
    """The schema as an analyst's database in `engine` holds it: the quoted SQLite text transpiled by the same
    rules as the answers (plain names unquoted, reserved and odd names quoted)."""
    quoted = quoted_schema(context)
    if engine == "sqlite":
        return quoted
    return [transpile_sql(statement, target=engine).text for statement in quoted]


def sqlite_compiles(context: str, query: str) -> bool:
    connection = sqlite3.connect(":memory:")
    try:
        for statement in engine_schema(context, "sqlite"):
            connection.execute(statement)
        connection.execute(f"EXPLAIN {query}")
        return True
    except sqlite3.Error:
        return False
    finally:
        connection.close()


# --- engines --------------------------------------------------------------------------------------------------


def compile_on_duckdb(jobs: Sequence[tuple[str, str]]) -> list[str | None]:
    """(context, query) -> None when the query compiles against the context's tables, else DuckDB's message."""
    import duckdb

    results: list[str | None] = []
    connections: dict[str, Any] = {}
    try:
        for context, query in jobs:
            connection = connections.get(context)
            if connection is None:
                connection = connections[context] = duckdb.connect(":memory:")
                for statement in engine_schema(context, "duckdb"):
                    connection.execute(statement)
            try:
                connection.execute(f"EXPLAIN {query}")
                results.append(None)
            except duckdb.Error as error:
                results.append(" ".join(str(error).split())[:300])
    finally:
        for connection in connections.values():
            connection.close()
    return results


def postgres_bin() -> Path | None:
    """The folder holding initdb/pg_ctl/psql: PATH first, then Debian's /usr/lib/postgresql/<version>/bin."""
    found = shutil.which("initdb")
    if found:
        return Path(found).resolve().parent  # /usr/local/bin/initdb may be a lone link into the real folder
    versions = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(p.split("/")[4]))
    return Path(versions[-1]).parent if versions else None


class ThrowawayPostgres:
    """A PostgreSQL cluster in a temporary folder, listening on a unix socket only; `compile` runs EXPLAINs."""

    def __init__(self, bin_dir: Path, folder: Path) -> None:
        self._bin = bin_dir
        self._folder = folder
        self._data = folder / "data"
        # The server refuses to run as root: when we are root, everything runs as the postgres user.
        self._as_user = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []

    def _run(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([*self._as_user, *args], capture_output=True, text=True, timeout=_PG_TIMEOUT_S,
                              check=False, cwd=self._folder)

    def start(self) -> None:
        if self._as_user:
            shutil.chown(self._folder, "postgres", "postgres")
        done = self._run(str(self._bin / "initdb"), "-D", str(self._data), "-U", "postgres", "-A", "trust",
                         "--no-sync", "-E", "UTF8", "--locale=C")
        if done.returncode != 0:
            raise RuntimeError(f"initdb failed: {done.stderr[-500:]}")
        options = f"-k {self._folder} -c listen_addresses='' -F -c max_connections=20"
        done = self._run(str(self._bin / "pg_ctl"), "-D", str(self._data), "-l", str(self._folder / "log"),
                         "-o", options, "-w", "-t", str(_PG_TIMEOUT_S), "start")
        if done.returncode != 0:
            raise RuntimeError(f"pg_ctl start failed: {done.stderr[-500:]}")

    @property
    def socket_dir(self) -> Path:
        """Where the server's unix socket is (a libpq `host=`)."""
        return self._folder

    def stop(self) -> None:
        if (self._data / "postmaster.pid").exists():
            self._run(str(self._bin / "pg_ctl"), "-D", str(self._data), "-m", "immediate", "-w", "stop")

    def compile(self, jobs: Sequence[tuple[str, str]]) -> list[str | None]:
        """(context, query) -> None when EXPLAIN succeeds, else the server's message. One psql session: each
        context gets its own schema, each query its own line, and errors are matched back by line number."""
        lines: list[str] = []
        where: dict[int, int] = {}  # script line -> job index
        schemas: dict[str, str] = {}
        for index, (context, query) in enumerate(jobs):
            if context not in schemas:
                schemas[context] = name = f"s{len(schemas)}"
                lines += [f"CREATE SCHEMA {name};", f"SET search_path TO {name};"]
                lines += [f"{statement};" for statement in engine_schema(context, "postgres")]
            lines.append(f"SET search_path TO {schemas[context]};")
            where[len(lines) + 1] = index
            lines.append("EXPLAIN " + " ".join(query.split()) + ";")
        lines.append(r"\echo sqlgate-script-done")
        script = self._folder / "compile.sql"
        script.write_text("\n".join(lines) + "\n", encoding="utf-8")
        if self._as_user:
            shutil.chown(script, "postgres", "postgres")
        done = self._run(str(self._bin / "psql"), "-X", "-q", "-h", str(self._folder), "-U", "postgres",
                         "-d", "postgres", "-v", "ON_ERROR_STOP=0", "-o", "/dev/null", "-f", str(script))
        if done.returncode != 0 or "sqlgate-script-done" not in done.stdout:
            raise RuntimeError(f"psql did not run the script to its end: {done.stderr[-500:]}")
        results: list[str | None] = [None] * len(jobs)
        for match in re.finditer(r"^psql:[^\n]*?:(\d+): ERROR:\s+(.*)$", done.stderr, re.MULTILINE):
            line = int(match.group(1))
            if line not in where:
                raise RuntimeError(f"PostgreSQL refused the schema: {match.group(0)[:300]}")
            results[where[line]] = match.group(2)[:300]
        return results


@contextmanager
def throwaway_postgres() -> Iterator[ThrowawayPostgres]:
    bin_dir = postgres_bin()
    if bin_dir is None:
        raise FileNotFoundError("PostgreSQL's initdb is not installed (Debian: apt-get install postgresql)")
    folder = Path(tempfile.mkdtemp(prefix="sqlgate-pg-"))
    server = ThrowawayPostgres(bin_dir, folder)
    try:
        server.start()
        yield server
    finally:
        server.stop()
        shutil.rmtree(folder, ignore_errors=True)


# --- the measurement ------------------------------------------------------------------------------------------


def load_rows(path: Path) -> list[Row]:
    rows = []
    with path.open(encoding="utf-8") as handle:
        for index, line in enumerate(handle):
            if line.strip():
                record = json.loads(line)
                rows.append(Row(index=index, context=record["context"], answer=record["answer"]))
    return rows


def measure(rows: Sequence[Row], engines: Sequence[str] = ENGINES, *, baseline: bool = False) -> dict[str, Any]:
    """Figures per engine; with `baseline`, also the pass rate of plain `sqlglot.transpile` (no SQLite meanings)."""
    base = [row for row in rows if sqlite_compiles(row.context, row.answer)]
    figures: dict[str, Any] = {"rows": len(rows), "compile_in_sqlite": len(base), "engines": {}}
    for engine in engines:
        if baseline:
            figures.setdefault("sqlglot_alone", {})[engine] = _sqlglot_alone(base, engine)
        result = EngineFigures(engine=engine, base=len(base))
        jobs: list[tuple[Row, str]] = []
        for row in base:
            try:
                text = transpile_sql(row.answer, target=engine, schema=row.context).text
            except TranspileRefused as refused:
                result.refused_by_transpile += 1
                result.failures.append({"row": row.index, "answer": row.answer, "stage": "transpile",
                                        "error": refused.reason})
                continue
            check = check_sql(text, schema=row.context, dialect=engine)
            if not check.valid:
                result.refused_by_guard += 1
                result.failures.append({"row": row.index, "answer": row.answer, "text": text, "stage": "guard",
                                        "error": "; ".join(problem.message for problem in check.problems)})
                continue
            jobs.append((row, text))
        errors = _compile(engine, [(row.context, text) for row, text in jobs])
        for (row, text), error in zip(jobs, errors, strict=True):
            if error is None:
                result.compiled += 1
            else:
                result.failures.append({"row": row.index, "answer": row.answer, "text": text, "stage": "compile",
                                        "error": error})
        figures["engines"][engine] = result.as_dict()
    return figures


def _sqlglot_alone(base: Sequence[Row], engine: str) -> dict[str, Any]:
    pairs = []
    for row in base:
        try:
            pairs.append((row.context, sqlglot.transpile(row.answer, read="sqlite", write=engine,
                                                         unsupported_level=sqlglot.ErrorLevel.RAISE)[0]))
        except sqlglot.errors.SqlglotError:
            continue
    errors = _compile(engine, pairs)
    compiled = sum(error is None for error in errors)
    return {"base": len(base), "compiled": compiled, "pass_rate": round(compiled / len(base), 4) if base else 0.0}


def _compile(engine: str, pairs: Sequence[tuple[str, str]]) -> list[str | None]:
    if engine == "duckdb":
        return compile_on_duckdb(pairs)
    with throwaway_postgres() as server:
        return server.compile(pairs)


def engine_versions(engines: Sequence[str]) -> dict[str, str]:
    versions = {}
    if "duckdb" in engines:
        import duckdb

        versions["duckdb"] = duckdb.__version__
    bin_dir = postgres_bin()
    if "postgres" in engines and bin_dir is not None:
        done = subprocess.run([str(bin_dir / "postgres"), "--version"], capture_output=True, text=True, check=False)
        versions["postgres"] = done.stdout.strip()
    return versions


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--engines", default=",".join(ENGINES))
    parser.add_argument("--out", type=Path, default=Path("reports/dialect_engines.json"))
    parser.add_argument("--baseline", action="store_true", help="also measure plain sqlglot.transpile")
    args = parser.parse_args(argv)
    engines = [name.strip() for name in args.engines.split(",") if name.strip()]
    figures = {"data": str(args.data), "sqlglot": sqlglot.__version__, "engine_versions": engine_versions(engines),
               **measure(load_rows(args.data), engines, baseline=args.baseline)}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(figures, indent=2) + "\n", encoding="utf-8")
    for engine, result in figures["engines"].items():
        print(f"{engine}: {result['compiled']}/{result['base']} compile ({result['pass_rate']:.1%}); "
              f"refused by transpile {result['refused_by_transpile']}, by guard {result['refused_by_guard']}")
    for engine, result in figures.get("sqlglot_alone", {}).items():
        print(f"{engine}, sqlglot alone: {result['compiled']}/{result['base']} compile ({result['pass_rate']:.1%})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
