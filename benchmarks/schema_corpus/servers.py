"""Throwaway PostgreSQL and MariaDB servers in temporary folders, on unix sockets only (no TCP), for the schema
corpus: load DDL, dump it with the real tool, read the engine's own catalog, run queries. Run as the package's own
account when this runs as root (neither server runs as root). Started once per test session or benchmark run."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from benchmarks.engine_servers import postgres_bin

_TIMEOUT_S = 120


class EngineError(RuntimeError):
    pass


def _as(user: str) -> list[str]:
    return ["runuser", "-u", user, "--"] if os.geteuid() == 0 else []


def _run(command: list[str], *, stdin: str | None = None, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(command, input=stdin, capture_output=True, text=True, timeout=_TIMEOUT_S, check=False,
                          cwd=cwd)


class Postgres:
    def __init__(self, folder: Path) -> None:
        bin_dir = postgres_bin()
        if bin_dir is None:
            raise EngineError("PostgreSQL's initdb is not installed (Debian: apt-get install postgresql)")
        self._bin = bin_dir
        self._folder = folder
        self._as = _as("postgres")
        self.version = _run([str(bin_dir / "postgres"), "--version"]).stdout.strip()

    def start(self) -> None:
        if self._as:
            shutil.chown(self._folder, "postgres", "postgres")
        data = self._folder / "data"
        done = _run([*self._as, str(self._bin / "initdb"), "-D", str(data), "-U", "postgres", "-A", "trust",
                     "--no-sync", "-E", "UTF8", "--locale=C"], cwd=self._folder)
        if done.returncode != 0:
            raise EngineError(f"initdb failed: {done.stderr[-400:]}")
        options = f"-k {self._folder} -c listen_addresses='' -F -c max_connections=10"
        done = _run([*self._as, str(self._bin / "pg_ctl"), "-D", str(data), "-l", str(self._folder / "log"),
                     "-o", options, "-w", "-t", "60", "start"], cwd=self._folder)
        if done.returncode != 0:
            raise EngineError(f"pg_ctl start failed: {done.stderr[-400:]}")

    def stop(self) -> None:
        data = self._folder / "data"
        if (data / "postmaster.pid").exists():
            _run([*self._as, str(self._bin / "pg_ctl"), "-D", str(data), "-m", "immediate", "-w", "stop"],
                 cwd=self._folder)

    def psql(self, sql: str, database: str = "postgres") -> str:
        """Run `sql` (stdin, stop at the first error); its unaligned, tuples-only output."""
        done = _run([*self._as, str(self._bin / "psql"), "-X", "-q", "-At", "-F", "\t", "-v", "ON_ERROR_STOP=1",
                     "-h", str(self._folder), "-U", "postgres", "-d", database], stdin=sql, cwd=self._folder)
        if done.returncode != 0:
            raise EngineError(f"psql: {done.stderr.strip()[-400:]}")
        return done.stdout

    def pg_dump(self, database: str) -> str:
        done = _run([*self._as, str(self._bin / "pg_dump"), "--schema-only", "-h", str(self._folder), "-U",
                     "postgres", database], cwd=self._folder)
        if done.returncode != 0:
            raise EngineError(f"pg_dump: {done.stderr.strip()[-400:]}")
        return done.stdout


def mariadb_programs() -> dict[str, str] | None:
    names = {"server": "mariadbd", "install": "mariadb-install-db", "client": "mariadb", "dump": "mysqldump",
             "admin": "mariadb-admin"}
    found = {key: shutil.which(name) or shutil.which(name, path="/usr/sbin:/usr/bin") for key, name in names.items()}
    return None if any(path is None for path in found.values()) else {k: str(v) for k, v in found.items()}


class MariaDB:
    def __init__(self, folder: Path) -> None:
        programs = mariadb_programs()
        if programs is None:
            raise EngineError("MariaDB is not installed (Debian: apt-get install mariadb-server mariadb-client)")
        self._programs = programs
        self._folder = folder
        self._socket = folder / "mysqld.sock"
        self._process: subprocess.Popen[bytes] | None = None
        self.version = _run([programs["server"], "--version"]).stdout.strip()

    def start(self) -> None:
        user = ["--user=mysql"] if os.geteuid() == 0 else []
        if user:
            shutil.chown(self._folder, "mysql", "mysql")
        done = _run([self._programs["install"], "--no-defaults", *user, f"--datadir={self._folder / 'data'}",
                     "--auth-root-authentication-method=normal", "--skip-test-db"], cwd=self._folder)
        if done.returncode != 0:
            raise EngineError(f"mariadb-install-db failed: {done.stderr[-400:]}")
        self._process = subprocess.Popen(
            [self._programs["server"], "--no-defaults", *user, f"--datadir={self._folder / 'data'}",
             f"--socket={self._socket}", "--skip-networking", f"--pid-file={self._folder / 'mysqld.pid'}",
             f"--log-error={self._folder / 'error.log'}", "--innodb-buffer-pool-size=16M"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        # mariadb-admin's own wait: it retries the connection until the server answers (or gives up)
        done = _run([self._programs["admin"], "--no-defaults", "-S", str(self._socket), "-uroot", "--wait=60",
                     "ping"])
        if done.returncode != 0 or self._process.poll() is not None:
            raise EngineError(f"mariadbd did not start: {(self._folder / 'error.log').read_text()[-400:]}")

    def stop(self) -> None:
        if self._process is not None and self._process.poll() is None:
            self._process.terminate()
            try:
                self._process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self._process.kill()

    def sql(self, sql: str, database: str | None = None) -> str:
        done = _run([self._programs["client"], "--no-defaults", "-S", str(self._socket), "-uroot", "-N", "-B",
                     *([database] if database else [])], stdin=sql)
        if done.returncode != 0:
            raise EngineError(f"mariadb: {done.stderr.strip()[-400:]}")
        return done.stdout

    def dump(self, database: str) -> str:
        done = _run([self._programs["dump"], "--no-defaults", "-S", str(self._socket), "-uroot", "--no-data",
                     "--databases", database])
        if done.returncode != 0:
            raise EngineError(f"mysqldump: {done.stderr.strip()[-400:]}")
        return done.stdout


@contextmanager
def running(kind: type[Postgres] | type[MariaDB]) -> Iterator[Postgres | MariaDB]:
    """A started server in a fresh temporary folder, stopped and removed at the end."""
    folder = Path(tempfile.mkdtemp(prefix=f"sqlgate-{kind.__name__.lower()}-"))
    server = kind(folder)
    try:
        server.start()
        yield server
    finally:
        server.stop()
        shutil.rmtree(folder, ignore_errors=True)
