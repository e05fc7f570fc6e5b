"""The adversarial corpus against real engines: SQLite, DuckDB and a throwaway PostgreSQL cluster.

For each engine the scratch database holds the schema's tables (users, orders) and, next to them, things an
attacker wants: tables the schema does not declare, a file in the working directory, a session setting, the
server's /etc/passwd and catalogs that name the secret tables. All of them carry a canary. Then:

1. the attacks are real: run unguarded, a good share of the corpus does read the canaries (so the checks below
   can fail);
2. every adversarial statement the guard accepts (with the schema under strict grounding, without a schema,
   and with the schema under advisory grounding) runs on a read-only connection, and its rows must carry no
   canary and the database must be unchanged; on SQLite an authorizer also proves that only the schema's
   tables were read.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import sqlite3
import subprocess
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from gateway.sql_check import check_sql
from tests.test_sql_guard_corpus import ADVERSARIAL, GROUNDING_ONLY, Case

CANARY = "canary_7f3a91"
SCHEMA_TABLES = {"users", "orders"}
SECRET_TABLES = ("secret_table", "salaries", "admins", "api_keys")
# The canary, /etc/passwd, the secret tables' names (what a catalog shows), the throwaway cluster's data directory.
LEAK_MARKERS = (CANARY, "root:x:0:0", "secret_table", "api_keys", "sqlgate-pg-")
READ_ATTACKS = {"file_table", "catalog_table", "settings_clause", "ungrounded", "system_catalog"}
SETUP = [
    "CREATE TABLE users (id INTEGER, name VARCHAR(50), email VARCHAR(100))",
    "CREATE TABLE orders (id INTEGER, user_id INTEGER, total REAL, created DATE)",
    "INSERT INTO users VALUES (1, 'Ann', 'ann@example.com'), (2, 'Bob', 'bob@example.com')",
    "INSERT INTO orders VALUES (1, 1, 9.5, '2024-01-02'), (2, 2, 20.0, '2024-02-03')",
    *[f"CREATE TABLE {table} (id INTEGER, user_id INTEGER, {CANARY} VARCHAR(40))" for table in SECRET_TABLES],
    *[f"INSERT INTO {table} VALUES (1, 1, '{CANARY}')" for table in SECRET_TABLES],
]
# What the engine executes: rows as text, or None when it refused the statement (an error is not a leak).
Runner = Callable[[str], "str | None"]


def leaked(output: str | None) -> bool:
    return output is not None and any(marker in output for marker in LEAK_MARKERS)


def accepted_statements(dialect: str) -> list[tuple[Case, str]]:
    """Every adversarial statement of the dialect that the guard accepts in any mode, with the mode. Reading a
    real table the schema does not declare (`ungrounded`) can only be refused with a schema under strict
    grounding: without one, only the database role protects (docs/sql-guard.md)."""
    accepted = []
    for case in ADVERSARIAL:
        if case.dialect != dialect:
            continue
        modes = [(case.schema, "strict")]
        if case.category not in GROUNDING_ONLY:
            modes += [(None, "strict"), (case.schema, "advisory")]
        for schema, grounding in modes:
            if check_sql(case.sql, schema=schema, dialect=dialect, grounding=grounding).valid:
                accepted.append((case, f"{grounding}, schema={schema is not None}"))
    return accepted


def demonstrate_and_guard(dialect: str, run: Runner, state: Callable[[], str], *, at_least: int) -> None:
    before = state()
    # Only the read classes run unguarded: the write, COPY ... TO PROGRAM and file-writing classes would act on
    # this machine even over a read-only connection.
    attacks = [case for case in ADVERSARIAL if case.dialect == dialect and case.category in READ_ATTACKS]
    leaking = [case.sql for case in attacks if leaked(run(case.sql))]
    print(f"{dialect}: {len(leaking)} of {len(attacks)} unguarded read attacks leaked")
    assert len(leaking) >= at_least, f"only {len(leaking)} unguarded attacks leaked: {leaking}"
    assert state() == before, "the read-only connection let an unguarded statement write"

    failures = []
    for case, mode in accepted_statements(dialect):
        output = run(case.sql)
        if leaked(output):
            failures.append(f"{mode}: {case.category}: {case.sql[:100]!r} leaked {output[:80]!r}")
    assert failures == []
    assert state() == before, "an accepted statement changed the database"


# --- SQLite -------------------------------------------------------------------------------------------------------


def test_sqlite_accepted_statements_read_only_the_schema_tables(tmp_path: Path) -> None:
    path = tmp_path / "scratch.db"
    with sqlite3.connect(path) as setup:
        for statement in SETUP:
            setup.execute(statement)
    connection = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    reads: list[str] = []

    def authorizer(action: int, first: str | None, second: str | None, *_: object) -> int:
        if action == sqlite3.SQLITE_READ and first:
            reads.append(first.lower())
        return sqlite3.SQLITE_OK

    connection.set_authorizer(authorizer)

    def run(sql: str) -> str | None:
        try:
            return repr(connection.execute(sql).fetchall())
        except sqlite3.Error:
            return None

    def state() -> str:
        return hashlib.sha256(path.read_bytes()).hexdigest()

    demonstrate_and_guard("sqlite", run, state, at_least=10)
    # The authorizer's view: statements the guard accepts read the schema's tables and nothing else.
    for case, mode in accepted_statements("sqlite"):
        reads.clear()
        run(case.sql)
        assert set(reads) <= SCHEMA_TABLES, f"{mode}: {case.sql!r} read {sorted(set(reads))}"
    connection.close()


# --- DuckDB -------------------------------------------------------------------------------------------------------


def test_duckdb_accepted_statements_read_no_file_catalog_or_setting(tmp_path: Path,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    duckdb = pytest.importorskip("duckdb")
    monkeypatch.chdir(tmp_path)  # the corpus reads 'secrets.csv' relative to the working directory
    (tmp_path / "secrets.csv").write_text(f"key,value\naws,{CANARY}\n", encoding="utf-8")
    path = tmp_path / "scratch.duckdb"
    with duckdb.connect(str(path)) as setup:
        for statement in SETUP:
            setup.execute(statement)
    connection = duckdb.connect(str(path), read_only=True)
    connection.execute(f"SET VARIABLE secret = '{CANARY}'")

    def run(sql: str) -> str | None:
        try:
            return repr(connection.execute(sql).fetchall())
        except duckdb.Error:
            return None

    def state() -> str:
        return repr(connection.execute("SELECT (SELECT list(u ORDER BY id) FROM users u), "
                                       "(SELECT list(o ORDER BY id) FROM orders o), "
                                       "(SELECT count(*) FROM duckdb_tables())").fetchall())

    demonstrate_and_guard("duckdb", run, state, at_least=12)
    connection.close()


# --- PostgreSQL ---------------------------------------------------------------------------------------------------


def _postgres_bin() -> Path | None:
    for candidate in sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True):
        if (candidate / "initdb").exists() and (candidate / "pg_ctl").exists():
            return candidate
    found = shutil.which("initdb")
    return Path(found).parent if found and shutil.which("pg_ctl") else None


@pytest.fixture(scope="module")
def postgres() -> Iterator[Callable[[str], str | None]]:
    """A throwaway cluster on a unix socket only (no TCP), run as a non-root user; psql as the client."""
    bin_dir = _postgres_bin()
    if bin_dir is None or shutil.which("psql") is None:
        pytest.skip("PostgreSQL binaries (initdb, pg_ctl, psql) are not installed")
    as_user: list[str] = []
    if os.geteuid() == 0:  # PostgreSQL refuses to run as root: use the package's own account
        runuser = shutil.which("runuser")
        if runuser is None:
            pytest.skip("running as root and runuser is missing, so PostgreSQL cannot be started")
        as_user = [runuser, "-u", "postgres", "--"]
    root = Path(tempfile.mkdtemp(prefix="sqlgate-pg-"))
    data, socket_dir = root / "data", root / "run"
    socket_dir.mkdir()
    if as_user:
        shutil.chown(root, "postgres")
        shutil.chown(socket_dir, "postgres")
    port = "5433"

    def sh(*command: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return subprocess.run([*as_user, *command], capture_output=True, text=True, check=check, timeout=120)

    sh(str(bin_dir / "initdb"), "-D", str(data), "-U", "postgres", "--auth=trust", "--no-sync")
    sh(str(bin_dir / "pg_ctl"), "-D", str(data), "-w", "-l", str(root / "log"), "start", "-o",
       f"-c listen_addresses='' -k {socket_dir} -p {port} -c fsync=off")
    try:
        def psql(sql: str, *, read_only: bool = True) -> str | None:
            options = "-c default_transaction_read_only=on" if read_only else ""
            result = subprocess.run(
                [*as_user, "psql", "-h", str(socket_dir), "-p", port, "-U", "postgres", "-d", "postgres", "-X",
                 "-At", "-v", "ON_ERROR_STOP=1", "-c", sql],
                capture_output=True, text=True, timeout=60,
                env={**os.environ, "PGOPTIONS": f"{options} -c app.secret={CANARY}"})
            return result.stdout if result.returncode == 0 else None

        for statement in SETUP:
            assert psql(statement, read_only=False) is not None, statement
        yield psql
    finally:
        sh(str(bin_dir / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop", check=False)
        shutil.rmtree(root, ignore_errors=True)


def test_postgres_accepted_statements_read_no_file_catalog_or_setting(
        postgres: Callable[[str], str | None]) -> None:
    def state() -> str:
        return postgres("SELECT (SELECT string_agg(u::text, ',' ORDER BY id) FROM users u) || "
                        "(SELECT string_agg(o::text, ',' ORDER BY id) FROM orders o) || "
                        "(SELECT count(*) FROM pg_class)") or "unreadable"

    demonstrate_and_guard("postgres", postgres, state, at_least=12)
