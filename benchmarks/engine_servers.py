"""Throwaway database servers for the dialect step's engine checks: a PostgreSQL cluster and a MariaDB server,
each in a temporary folder, listening on a unix socket only (no TCP), run as the package's system user when this
runs as root (both servers refuse root), stopped and removed at the end.

Each server also gets the least-privileged role the gateway's check setting is documented with (docs/clients.md,
"Dialects"): `sqlgate_check`, which may only create temporary tables in a scratch database, so the tests and the
benchmark prove those privileges are enough.

    with throwaway_postgres() as pg: pg.check_url, pg.admin_url
    with throwaway_mariadb() as my: my.check_url, my.admin_url
"""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

START_TIMEOUT_S = 60
CHECK_ROLE = "sqlgate_check"
SCRATCH_DATABASE = "sqlgate_scratch"
DATA_DATABASE = "sqlgate_data"


class EngineUnavailable(RuntimeError):
    """The engine's programs are not installed, or its server could not start here (the message says why)."""


def postgres_bin() -> Path | None:
    """The folder holding initdb/pg_ctl/psql: PATH first, then Debian's /usr/lib/postgresql/<version>/bin."""
    found = shutil.which("initdb")
    if found:
        return Path(found).resolve().parent  # /usr/local/bin/initdb may be a lone link into the real folder
    versions = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(p.split("/")[4]))
    return Path(versions[-1]).parent if versions else None


def mariadb_programs() -> tuple[str, str, str] | None:
    """(server, install-db, admin client) when Debian's mariadb-server is installed."""
    server = shutil.which("mariadbd") or shutil.which("mariadbd", path="/usr/sbin:/usr/local/sbin")
    install = shutil.which("mariadb-install-db")
    admin = shutil.which("mariadb-admin")
    return (server, install, admin) if server and install and admin else None


def _as_user(user: str) -> list[str]:
    return ["runuser", "-u", user, "--"] if os.geteuid() == 0 else []


def _run(command: list[str], cwd: Path, what: str) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(command, capture_output=True, text=True, timeout=START_TIMEOUT_S, check=False, cwd=cwd)
    if done.returncode != 0:
        raise EngineUnavailable(f"{what} failed: {(done.stderr or done.stdout)[-500:]}")
    return done


class ThrowawayPostgres:
    """A PostgreSQL cluster in `folder`, on a unix socket only. `admin_url` is the superuser's; `check_url` the
    least-privileged check role's (CONNECT and TEMPORARY on the scratch database, nothing else)."""

    def __init__(self, bin_dir: Path, folder: Path) -> None:
        self.bin = bin_dir
        self.folder = folder
        self._data = folder / "data"
        self._user = _as_user("postgres")

    @property
    def admin_url(self) -> str:
        return f"postgresql://postgres@/{DATA_DATABASE}?host={self.folder}"

    @property
    def check_url(self) -> str:
        return f"postgresql://{CHECK_ROLE}@/{SCRATCH_DATABASE}?host={self.folder}"

    def version(self) -> str:
        done = subprocess.run([str(self.bin / "postgres"), "--version"], capture_output=True, text=True, check=False)
        return done.stdout.strip()

    def start(self) -> None:
        if self._user:
            shutil.chown(self.folder, "postgres", "postgres")
        _run([*self._user, str(self.bin / "initdb"), "-D", str(self._data), "-U", "postgres", "-A", "trust",
              "--no-sync", "-E", "UTF8", "--locale=C.UTF-8"], self.folder, "initdb")
        options = f"-k {self.folder} -c listen_addresses='' -F -c max_connections=20"
        _run([*self._user, str(self.bin / "pg_ctl"), "-D", str(self._data), "-l", str(self.folder / "log"),
              "-o", options, "-w", "-t", str(START_TIMEOUT_S), "start"], self.folder, "pg_ctl start")
        self.psql("postgres", f"CREATE DATABASE {DATA_DATABASE}", f"CREATE DATABASE {SCRATCH_DATABASE}",
                  f"CREATE ROLE {CHECK_ROLE} LOGIN",
                  f"REVOKE ALL ON DATABASE {SCRATCH_DATABASE} FROM PUBLIC",
                  f"GRANT CONNECT, TEMPORARY ON DATABASE {SCRATCH_DATABASE} TO {CHECK_ROLE}")
        self.psql(SCRATCH_DATABASE, "REVOKE ALL ON SCHEMA public FROM PUBLIC")

    def psql(self, database: str, *statements: str) -> str:
        script = "".join(f"{statement};\n" for statement in statements)
        done = subprocess.run([*self._user, str(self.bin / "psql"), "-X", "-q", "-v", "ON_ERROR_STOP=1", "-h",
                               str(self.folder), "-U", "postgres", "-d", database, "-At"], input=script,
                              capture_output=True, text=True, timeout=START_TIMEOUT_S, check=False, cwd=self.folder)
        if done.returncode != 0:
            raise EngineUnavailable(f"psql failed: {done.stderr[-500:]}")
        return done.stdout

    def stop(self) -> None:
        if (self._data / "postmaster.pid").exists():
            subprocess.run([*self._user, str(self.bin / "pg_ctl"), "-D", str(self._data), "-m", "immediate", "-w",
                            "stop"], capture_output=True, text=True, timeout=START_TIMEOUT_S, check=False,
                           cwd=self.folder)


class ThrowawayMariaDB:
    """A MariaDB server in `folder`, on a unix socket only, utf8mb4 with its usual case-insensitive collation
    (what Debian's package configures). `check_url`: a role that may only create temporary tables in the scratch
    database."""

    def __init__(self, programs: tuple[str, str, str], folder: Path) -> None:
        self.server, self.install, self.admin = programs
        self.folder = folder
        self.socket = folder / "mysqld.sock"
        self._user = _as_user("mysql")
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def admin_url(self) -> str:
        return f"mysql://root@localhost/{DATA_DATABASE}?unix_socket={self.socket}"

    @property
    def check_url(self) -> str:
        return f"mysql://{CHECK_ROLE}@localhost/{SCRATCH_DATABASE}?unix_socket={self.socket}"

    def version(self) -> str:
        done = subprocess.run([self.server, "--version"], capture_output=True, text=True, check=False)
        return " ".join(done.stdout.split())

    def start(self) -> None:
        if self._user:
            shutil.chown(self.folder, "mysql", "mysql")
        data = self.folder / "data"
        _run([*self._user, self.install, "--no-defaults", f"--datadir={data}", "--skip-test-db",
              "--auth-root-authentication-method=normal"], self.folder, "mariadb-install-db")
        log = (self.folder / "server.log").open("wb")
        self._process = subprocess.Popen(
            [*self._user, self.server, "--no-defaults", f"--datadir={data}", f"--socket={self.socket}",
             "--skip-networking", f"--pid-file={self.folder / 'mysqld.pid'}", f"--log-error={self.folder / 'err.log'}",
             "--innodb-buffer-pool-size=16M", "--skip-log-bin", "--character-set-server=utf8mb4",
             "--collation-server=utf8mb4_general_ci", "--max-connections=40"],
            stdout=log, stderr=subprocess.STDOUT, cwd=self.folder)
        log.close()
        # mariadb-admin --wait retries the connection itself until the server answers (or the count runs out).
        done = subprocess.run([self.admin, f"--socket={self.socket}", "-u", "root", "--wait=60",
                               "--connect-timeout=2", "ping"], capture_output=True, text=True,
                              timeout=START_TIMEOUT_S + 30, check=False)
        if done.returncode != 0 or self._process.poll() is not None:
            errors = (self.folder / "err.log").read_text(errors="replace")[-500:] if (
                self.folder / "err.log").exists() else ""
            raise EngineUnavailable(f"mariadbd did not start: {done.stderr[-300:]} {errors}")
        self.sql(f"CREATE DATABASE {DATA_DATABASE}", f"CREATE DATABASE {SCRATCH_DATABASE}",
                 f"CREATE USER '{CHECK_ROLE}'@'localhost'",
                 f"GRANT CREATE TEMPORARY TABLES ON {SCRATCH_DATABASE}.* TO '{CHECK_ROLE}'@'localhost'")

    def sql(self, *statements: str) -> str:
        script = "".join(f"{statement};\n" for statement in statements)
        client = shutil.which("mariadb") or "mariadb"
        done = subprocess.run([client, f"--socket={self.socket}", "-u", "root", "-N", "-B"], input=script,
                              capture_output=True, text=True, timeout=START_TIMEOUT_S, check=False)
        if done.returncode != 0:
            raise EngineUnavailable(f"mariadb client failed: {done.stderr[-500:]}")
        return done.stdout

    def stop(self) -> None:
        if self._process is None or self._process.poll() is not None:
            return
        subprocess.run([self.admin, f"--socket={self.socket}", "-u", "root", "shutdown"], capture_output=True,
                       timeout=START_TIMEOUT_S, check=False)
        try:
            self._process.wait(timeout=START_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()


@contextmanager
def throwaway_postgres() -> Iterator[ThrowawayPostgres]:
    bin_dir = postgres_bin()
    if bin_dir is None:
        raise EngineUnavailable("PostgreSQL's initdb is not installed (Debian: apt-get install postgresql)")
    folder = Path(tempfile.mkdtemp(prefix="sqlgate-pg-"))
    server = ThrowawayPostgres(bin_dir, folder)
    try:
        server.start()
        yield server
    finally:
        server.stop()
        shutil.rmtree(folder, ignore_errors=True)


@contextmanager
def throwaway_mariadb() -> Iterator[ThrowawayMariaDB]:
    programs = mariadb_programs()
    if programs is None:
        raise EngineUnavailable("MariaDB's server is not installed (Debian: apt-get install mariadb-server)")
    # A short path: a unix socket's path is limited to ~107 bytes.
    folder = Path(tempfile.mkdtemp(prefix="sqlgate-my-", dir="/tmp"))
    server = ThrowawayMariaDB(programs, folder)
    try:
        server.start()
        yield server
    finally:
        server.stop()
        shutil.rmtree(folder, ignore_errors=True)
