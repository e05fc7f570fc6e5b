"""launch/system_deps.sh, which `make test` runs first: nothing to do when every program is there; apt-get for
exactly the missing packages as root (or with password-less sudo); otherwise one clear message and exit 1 before
any test runs. apt-get, sudo and id are recording stubs on a private PATH: a test must not install packages."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[1] / "launch" / "system_deps.sh"
PROGRAMS = {"redis-server": "redis-server", "chromium": "chromium", "chromedriver": "chromium-driver",
            "promtool": "prometheus", "amtool": "prometheus-alertmanager", "mysqldump": "mariadb-client",
            "mariadb-install-db": "mariadb-server", "sqlite3": "sqlite3"}
BASICS = ("bash", "awk", "paste", "cat", "env")


def stub(path: Path, body: str) -> None:
    path.write_text("#!/bin/bash\n" + body + "\n")
    path.chmod(0o755)


def sandbox(tmp_path: Path, *, present: set[str], uid: int, sudo: bool) -> tuple[Path, Path]:
    """A PATH with the basics, the `present` programs, and stubs; returns (bin dir, the call log)."""
    bin_dir, log = tmp_path / "bin", tmp_path / "calls.log"
    bin_dir.mkdir()
    for name in BASICS:
        found = shutil.which(name)
        assert found is not None
        (bin_dir / name).symlink_to(found)
    for name in present:
        stub(bin_dir / name, "exit 0")
    stub(bin_dir / "id", f"echo {uid}")
    # apt-get "installs" a package by creating the programs it provides.
    provides = " ".join(f"[{package}]='{program}'" for program, package in PROGRAMS.items())
    stub(bin_dir / "apt-get", f"""echo "apt-get $*" >> {log}
declare -A provides=({provides})
for word in "$@"; do
  program=${{provides[$word]:-}}
  [[ -n $program ]] && {{ printf '#!/bin/bash\\nexit 0\\n' > {bin_dir}/$program; chmod +x {bin_dir}/$program; }}
done
exit 0""")
    if sudo:
        stub(bin_dir / "sudo",
             f'echo "sudo $*" >> {log}\n[[ $1 == -n ]] && shift\n[[ $1 == true ]] && exit 0\nexec "$@"')
    return bin_dir, log


def run(bin_dir: Path) -> subprocess.CompletedProcess[str]:
    env = {"PATH": str(bin_dir), "HOME": os.environ.get("HOME", "/root")}
    return subprocess.run([str(bin_dir / "bash"), str(SCRIPT)], env=env, capture_output=True, text=True,
                          timeout=60, check=False)


def test_nothing_missing_means_nothing_installed(tmp_path: Path) -> None:
    bin_dir, log = sandbox(tmp_path, present=set(PROGRAMS), uid=0, sudo=False)
    done = run(bin_dir)
    assert done.returncode == 0, done.stderr
    assert not log.exists()


def test_as_root_apt_get_installs_exactly_the_missing_packages(tmp_path: Path) -> None:
    bin_dir, log = sandbox(tmp_path, present={"redis-server", "chromium"}, uid=0, sudo=False)
    done = run(bin_dir)
    assert done.returncode == 0, done.stderr
    calls = log.read_text().splitlines()
    assert calls[0] == "apt-get update -q"
    assert calls[1] == ("apt-get install -y -q --no-install-recommends "
                        "chromium-driver prometheus prometheus-alertmanager mariadb-client mariadb-server sqlite3")
    assert all((bin_dir / program).exists() for program in PROGRAMS)


def test_with_passwordless_sudo_it_installs_through_sudo(tmp_path: Path) -> None:
    bin_dir, log = sandbox(tmp_path, present=set(PROGRAMS) - {"promtool"}, uid=1000, sudo=True)
    done = run(bin_dir)
    assert done.returncode == 0, done.stderr
    assert "sudo -n apt-get install -y -q --no-install-recommends prometheus" in log.read_text()


def test_without_root_or_sudo_it_stops_first_naming_the_packages_and_the_command(tmp_path: Path) -> None:
    bin_dir, log = sandbox(tmp_path, present={"redis-server"}, uid=1000, sudo=False)
    done = run(bin_dir)
    assert done.returncode == 1
    missing = "chromium chromium-driver prometheus prometheus-alertmanager mariadb-client mariadb-server sqlite3"
    assert f"not installed: {missing}" in done.stderr
    assert f"sudo apt-get install -y --no-install-recommends {missing}" in done.stderr
    assert not log.exists()


def test_make_test_runs_it_before_the_tests() -> None:
    makefile = (SCRIPT.parents[1] / "Makefile").read_text()
    recipe = makefile.split("\ntest:", 1)[1].split("\n\n", 1)[0]
    assert "system-deps" in recipe.splitlines()[0]
    assert "bash launch/system_deps.sh" in makefile.split("\nsystem-deps:", 1)[1].split("\n\n", 1)[0]


def test_ci_runs_only_the_readmes_commands() -> None:
    """CI proves the README only if it does nothing the README's reader would not: no apt-get, no pip of its own."""
    root = SCRIPT.parents[1]
    ci = (root / ".ci" / "run").read_text()
    readme = (root / "README.md").read_text()
    commands = [line.strip() for line in ci.splitlines()
                if line.strip() and not line.strip().startswith(("#", "echo", "set ", "cd ", "export ", "trap"))]
    assert commands, ci
    for command in commands:
        assert command.startswith("make "), f".ci/run runs something the README does not: {command}"
        target = command.split()[1]
        assert f"make {target}" in readme, f"`make {target}` is not a README command"
    assert "apt-get" not in ci and "pip " not in ci and "install.sh" not in ci
    assert {"make up", "make test"} <= {" ".join(c.split()[:2]) for c in commands}
