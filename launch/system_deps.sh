#!/usr/bin/env bash
# The system programs `make test` needs beyond the Python environments, installed from Debian when possible.
#
#   redis-server                      (redis-server)            the shared cache and rate limits, for real
#   chromium, chromedriver            (chromium, chromium-driver) the web form in a real browser
#   promtool                          (prometheus)              the alert rules' unit tests; the same package's
#                                                               server runs the dashboard's queries (test_dashboard)
#   amtool                            (prometheus-alertmanager) the alert routing check
#   initdb, pg_ctl                    (postgresql)              the guard's and the dialect step's engine tests, and
#                                                               the store's tests on a real PostgreSQL (feedback, SIGKILL)
#   mariadb-install-db, mysqldump     (mariadb-server, -client) the schema corpus: a throwaway MariaDB, mysqldump --no-data;
#                                                               the dialect step's MySQL-dialect engine tests and
#                                                               `make dialect-engines` (a throwaway server, mariadbd)
#   sqlite3                           (sqlite3)                 the schema corpus's `.schema` output
#
# Nothing missing: exit 0 at once. Missing and root (or password-less sudo): apt-get installs them. Otherwise one
# message naming the packages and the command, and exit 1, before any test runs.
#   SQLGATE_SYSTEM_DEPS=skip   check nothing (a machine that provides these some other way)
set -euo pipefail

[[ ${SQLGATE_SYSTEM_DEPS:-} == skip ]] && exit 0

# program:debian-package
NEEDED=(redis-server:redis-server chromium:chromium chromedriver:chromium-driver promtool:prometheus
        amtool:prometheus-alertmanager mysqldump:mariadb-client mariadb-install-db:mariadb-server sqlite3:sqlite3)

missing_packages() {
  local entry packages=()
  for entry in "${NEEDED[@]}"; do
    command -v "${entry%%:*}" >/dev/null 2>&1 || packages+=("${entry#*:}")
  done
  # PostgreSQL's server programs (the guard's and the dialect step's engine tests start a throwaway cluster) live
  # in /usr/lib/postgresql/<version>/bin on Debian, not on PATH.
  if ! command -v initdb >/dev/null 2>&1 && ! compgen -G '/usr/lib/postgresql/*/bin/initdb' >/dev/null; then
    packages+=(postgresql)
  fi
  # Unique, in order (chromium and chromium-driver are separate packages; prometheus brings only promtool's).
  printf '%s\n' "${packages[@]}" | awk 'NF && !seen[$0]++' | paste -sd' ' -
}

missing=$(missing_packages)
[[ -z $missing ]] && exit 0

install_command="apt-get install -y --no-install-recommends $missing"
as_root=()
if [[ $(id -u) -ne 0 ]]; then
  if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
    as_root=(sudo -n)
  else
    as_root=(none)
  fi
fi
if [[ ${as_root[0]:-} == none || -z $(command -v apt-get) ]]; then
  {
    echo "make test needs these system packages, which are not installed: $missing"
    if [[ -z $(command -v apt-get) ]]; then
      echo "This is not a Debian/Ubuntu machine: install the equivalents of those packages, then run make test again."
    else
      echo "Install them with:  sudo apt-get update && sudo $install_command"
      echo "(or run make test as root, or with password-less sudo, and it installs them itself)"
    fi
  } >&2
  exit 1
fi

echo "== system packages for the tests: $missing" >&2
export DEBIAN_FRONTEND=noninteractive
# A container without an init system: keep the packages' services (redis, prometheus) from being started.
"${as_root[@]}" apt-get update -q >/dev/null
RUNLEVEL=1 "${as_root[@]}" apt-get install -y -q --no-install-recommends $missing >/dev/null

still=$(missing_packages)
if [[ -n $still ]]; then
  echo "apt-get ran but these are still missing: $still" >&2
  exit 1
fi
