"""Throwaway database servers for the dialect step's engine checks and the schema corpus: a PostgreSQL cluster and a
MariaDB server, each in a temporary folder, listening on a unix socket only (no TCP), run as the package's system
user when this runs as root (both servers refuse root), stopped and removed at the end.

Each server also gets the least-privileged role the gateway's check setting is documented with (docs/clients.md,
"Dialects"): `sqlgate_check`, which may only create temporary tables in a scratch database, so the tests and the
benchmark prove those privileges are enough.

    with throwaway_postgres() as pg: pg.check_url, pg.admin_url, pg.psql(script, database), pg.pg_dump(database)
    with throwaway_mariadb() as my: my.check_url, my.admin_url, my.sql(script, database), my.dump(database)
"""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import tempfile
from abc import ABC, abstractmethod
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import ClassVar, NamedTuple, TypeVar

START_TIMEOUT_S = 60
# psql, the mariadb client and the dumps: the schema corpus loads and dumps 1,000 tables, on a machine that may be busy
TOOL_TIMEOUT_S = 120
CHECK_ROLE = "sqlgate_check"
SCRATCH_DATABASE = "sqlgate_scratch"
DATA_DATABASE = "sqlgate_data"


class EngineError(RuntimeError):
    """One of a server's tools failed (psql, the mariadb client, a dump): the message says why."""


class EngineUnavailable(EngineError):
    """The engine's programs are not installed, or its server could not start here (the message says why)."""


def postgres_bin() -> Path | None:
    """The folder holding initdb/pg_ctl/psql: PATH first, then Debian's /usr/lib/postgresql/<version>/bin."""
    found = shutil.which("initdb")
    if found:
        return Path(found).resolve().parent  # /usr/local/bin/initdb may be a lone link into the real folder
    versions = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(p.split("/")[4]))
    return Path(versions[-1]).parent if versions else None


class MariaDBPrograms(NamedTuple):
    server: str
    install: str
    admin: str
    client: str
    dump: str


def mariadb_programs() -> MariaDBPrograms | None:
    """The server's and the client's programs when Debian's mariadb-server is installed (it pulls mariadb-client)."""
    names = ("mariadbd", "mariadb-install-db", "mariadb-admin", "mariadb", "mysqldump")
    found = [shutil.which(name) or shutil.which(name, path="/usr/sbin:/usr/local/sbin:/usr/bin") for name in names]
    programs = [path for path in found if path]
    return MariaDBPrograms(*programs) if len(programs) == len(names) else None


def _as_user(user: str) -> list[str]:
    return ["runuser", "-u", user, "--"] if os.geteuid() == 0 else []


def _run(command: list[str], what: str, *, cwd: Path | None = None, stdin: str | None = None,
         timeout: float = START_TIMEOUT_S, error: type[EngineError] = EngineUnavailable) -> str:
    """`command`'s output; `error` with the end of what it printed when it fails."""
    done = subprocess.run(command, input=stdin, capture_output=True, text=True, timeout=timeout, check=False, cwd=cwd)
    if done.returncode != 0:
        raise error(f"{what} failed: {(done.stderr or done.stdout).strip()[-500:]}")
    return done.stdout


def _script(*statements: str) -> str:
    return "".join(f"{statement};\n" for statement in statements)


class _Throwaway(ABC):
    """What both servers share: a folder of their own, the URLs of the superuser and of the check role."""

    superuser: ClassVar[str]

    def __init__(self, folder: Path, program: str) -> None:
        self.folder = folder
        self._program = program

    @abstractmethod
    def _url(self, user: str, database: str) -> str: ...

    @property
    def admin_url(self) -> str:
        return self._url(self.superuser, DATA_DATABASE)

    @property
    def check_url(self) -> str:
        return self._url(CHECK_ROLE, SCRATCH_DATABASE)

    def version(self) -> str:
        done = subprocess.run([self._program, "--version"], capture_output=True, text=True, check=False)
        return " ".join(done.stdout.split())

    @abstractmethod
    def start(self) -> None: ...

    @abstractmethod
    def stop(self) -> None: ...


class ThrowawayPostgres(_Throwaway):
    """A PostgreSQL cluster in `folder`, on a unix socket only. `admin_url` is the superuser's; `check_url` the
    least-privileged check role's (CONNECT and TEMPORARY on the scratch database, nothing else)."""

    superuser = "postgres"

    def __init__(self, bin_dir: Path, folder: Path) -> None:
        super().__init__(folder, str(bin_dir / "postgres"))
        self.bin = bin_dir
        self._data = folder / "data"
        self._user = _as_user("postgres")

    def _url(self, user: str, database: str) -> str:
        return f"postgresql://{user}@/{database}?host={self.folder}"

    def start(self) -> None:
        if self._user:
            shutil.chown(self.folder, "postgres", "postgres")
        _run([*self._user, str(self.bin / "initdb"), "-D", str(self._data), "-U", "postgres", "-A", "trust",
              "--no-sync", "-E", "UTF8", "--locale=C.UTF-8"], "initdb", cwd=self.folder)
        options = f"-k {self.folder} -c listen_addresses='' -F -c max_connections=20"
        _run([*self._user, str(self.bin / "pg_ctl"), "-D", str(self._data), "-l", str(self.folder / "log"),
              "-o", options, "-w", "-t", str(START_TIMEOUT_S), "start"], "pg_ctl start", cwd=self.folder)
        _run(self._psql("postgres"), "psql", cwd=self.folder, stdin=_script(
            f"CREATE DATABASE {DATA_DATABASE}", f"CREATE DATABASE {SCRATCH_DATABASE}",
            f"CREATE ROLE {CHECK_ROLE} LOGIN", f"REVOKE ALL ON DATABASE {SCRATCH_DATABASE} FROM PUBLIC",
            f"GRANT CONNECT, TEMPORARY ON DATABASE {SCRATCH_DATABASE} TO {CHECK_ROLE}"))
        _run(self._psql(SCRATCH_DATABASE), "psql", cwd=self.folder,
             stdin=_script("REVOKE ALL ON SCHEMA public FROM PUBLIC"))

    def _psql(self, database: str) -> list[str]:
        return [*self._user, str(self.bin / "psql"), "-X", "-q", "-At", "-F", "\t", "-v", "ON_ERROR_STOP=1", "-h",
                str(self.folder), "-U", "postgres", "-d", database]

    def psql(self, script: str, database: str = "postgres") -> str:
        """Run `script` as the superuser, stopping at the first error: its unaligned, tuples-only output, fields
        separated by tabs."""
        return _run(self._psql(database), "psql", cwd=self.folder, stdin=script, timeout=TOOL_TIMEOUT_S,
                    error=EngineError)

    def pg_dump(self, database: str) -> str:
        """`pg_dump --schema-only` of `database`."""
        return _run([*self._user, str(self.bin / "pg_dump"), "--schema-only", "-h", str(self.folder), "-U", "postgres",
                     database], "pg_dump", cwd=self.folder, timeout=TOOL_TIMEOUT_S, error=EngineError)

    def stop(self) -> None:
        if (self._data / "postmaster.pid").exists():
            subprocess.run([*self._user, str(self.bin / "pg_ctl"), "-D", str(self._data), "-m", "immediate", "-w",
                            "stop"], capture_output=True, text=True, timeout=START_TIMEOUT_S, check=False,
                           cwd=self.folder)


class ThrowawayMariaDB(_Throwaway):
    """A MariaDB server in `folder`, on a unix socket only, utf8mb4 with its usual case-insensitive collation
    (what Debian's package configures). `check_url`: a role that may only create temporary tables in the scratch
    database."""

    superuser = "root"

    def __init__(self, programs: MariaDBPrograms, folder: Path) -> None:
        super().__init__(folder, programs.server)
        self.programs = programs
        self.socket = folder / "mysqld.sock"
        self._user = _as_user("mysql")
        self._process: subprocess.Popen[bytes] | None = None

    def _url(self, user: str, database: str) -> str:
        return f"mysql://{user}@localhost/{database}?unix_socket={self.socket}"

    def _client(self, program: str) -> list[str]:
        # Only the command line configures a throwaway server's clients: the machine's my.cnf is for its own server.
        return [program, "--no-defaults", f"--socket={self.socket}", "-u", "root"]

    def start(self) -> None:
        if self._user:
            shutil.chown(self.folder, "mysql", "mysql")
        data = self.folder / "data"
        _run([*self._user, self.programs.install, "--no-defaults", f"--datadir={data}", "--skip-test-db",
              "--auth-root-authentication-method=normal"], "mariadb-install-db", cwd=self.folder)
        log = (self.folder / "server.log").open("wb")
        self._process = subprocess.Popen(
            [*self._user, self.programs.server, "--no-defaults", f"--datadir={data}", f"--socket={self.socket}",
             "--skip-networking", f"--pid-file={self.folder / 'mysqld.pid'}", f"--log-error={self.folder / 'err.log'}",
             "--innodb-buffer-pool-size=16M", "--skip-log-bin", "--character-set-server=utf8mb4",
             "--collation-server=utf8mb4_general_ci", "--max-connections=40"],
            stdout=log, stderr=subprocess.STDOUT, cwd=self.folder)
        log.close()
        # mariadb-admin --wait retries the connection itself until the server answers (or the count runs out).
        done = subprocess.run([*self._client(self.programs.admin), "--wait=60", "--connect-timeout=2", "ping"],
                              capture_output=True, text=True, timeout=START_TIMEOUT_S + 30, check=False)
        if done.returncode != 0 or self._process.poll() is not None:
            errors = (self.folder / "err.log").read_text(errors="replace")[-500:] if (
                self.folder / "err.log").exists() else ""
            raise EngineUnavailable(f"mariadbd did not start: {done.stderr[-300:]} {errors}")
        _run([*self._client(self.programs.client), "-N", "-B"], "mariadb client", stdin=_script(
            f"CREATE DATABASE {DATA_DATABASE}", f"CREATE DATABASE {SCRATCH_DATABASE}",
            f"CREATE USER '{CHECK_ROLE}'@'localhost'",
            f"GRANT CREATE TEMPORARY TABLES ON {SCRATCH_DATABASE}.* TO '{CHECK_ROLE}'@'localhost'"))

    def sql(self, script: str, database: str | None = None) -> str:
        """Run `script` as root (in `database` if given): its output, tab-separated, without column names."""
        return _run([*self._client(self.programs.client), "-N", "-B", *([database] if database else [])],
                    "mariadb client", stdin=script, timeout=TOOL_TIMEOUT_S, error=EngineError)

    def dump(self, database: str) -> str:
        """`mysqldump --no-data` of `database`."""
        return _run([*self._client(self.programs.dump), "--no-data", "--databases", database], "mysqldump",
                    timeout=TOOL_TIMEOUT_S, error=EngineError)

    def stop(self) -> None:
        if self._process is None or self._process.poll() is not None:
            return
        subprocess.run([*self._client(self.programs.admin), "shutdown"], capture_output=True,
                       timeout=START_TIMEOUT_S, check=False)
        try:
            self._process.wait(timeout=START_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()


_Server = TypeVar("_Server", bound=_Throwaway)


@contextmanager
def _running(server: _Server) -> Iterator[_Server]:
    try:
        server.start()
        yield server
    finally:
        server.stop()
        shutil.rmtree(server.folder, ignore_errors=True)


@contextmanager
def throwaway_postgres() -> Iterator[ThrowawayPostgres]:
    bin_dir = postgres_bin()
    if bin_dir is None:
        raise EngineUnavailable("PostgreSQL's initdb is not installed (Debian: apt-get install postgresql)")
    with _running(ThrowawayPostgres(bin_dir, Path(tempfile.mkdtemp(prefix="sqlgate-pg-")))) as server:
        yield server


@contextmanager
def throwaway_mariadb() -> Iterator[ThrowawayMariaDB]:
    programs = mariadb_programs()
    if programs is None:
        raise EngineUnavailable("MariaDB is not installed (Debian: apt-get install mariadb-server mariadb-client)")
    # A short path: a unix socket's path is limited to ~107 bytes.
    with _running(ThrowawayMariaDB(programs, Path(tempfile.mkdtemp(prefix="sqlgate-my-", dir="/tmp")))) as server:
        yield server
