#!/usr/bin/env bash
# Set up and run the whole test suite: lint, types, generated-code freshness,
# docs (warnings are errors) and pytest on asyncio, uvloop and trio; then the
# suite again against the lowest version of every dependency pyproject.toml
# allows (constraints/lowest.txt).
# Everything Python is installed into project-local virtual environments
# (.venv/ and .venv-lowest/), never into the system Python.  Arguments are
# passed to the first pytest run.
#
# The suite mostly waits (servers starting, subprocesses, sockets, timeouts)
# rather than computes -- about a quarter of one CPU -- so the lowest-version
# venv is installed while the linters run.  PYTEST_WORKERS=N spreads
# each run's files over N processes (pytest-xdist; --dist loadfile keeps a
# module's server fixture in one of them); the default, 0, keeps each run in
# one process, so the tests that measure the loop's timing are not crowded.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/_venv.sh

# Debian packages for the real programs and servers the tests start.
need=()
command -v mosquitto >/dev/null 2>&1 || [ -x /usr/sbin/mosquitto ] || need+=(mosquitto)
command -v openssl >/dev/null 2>&1 || need+=(openssl)
command -v chromium >/dev/null 2>&1 || need+=(chromium)
command -v socat >/dev/null 2>&1 || need+=(socat)
command -v bc >/dev/null 2>&1 || need+=(bc)
[ -x /usr/lib/postgresql/15/bin/initdb ] || need+=(postgresql)
command -v redis-server >/dev/null 2>&1 || need+=(redis-server)
[ -x /usr/sbin/sshd ] || need+=(openssh-server)
command -v ssh-keygen >/dev/null 2>&1 || need+=(openssh-client)
apt_need "${need[@]}"

use_venv .venv dev
workers=${PYTEST_WORKERS:-0}
xdist=(-n "$workers" --dist loadfile)
[ "$workers" != 0 ] || xdist=()

# The lowest-version venv installs in the background while the linters run.
lowest_log=$(mktemp)
trap 'rm -f "$lowest_log"' EXIT
(use_venv .venv-lowest test constraints/lowest.txt) >"$lowest_log" 2>&1 &
lowest_setup=$!

echo "== ruff"
"$PY" -m ruff check adapt recipes tests benchmarks examples
"$PY" -m ruff format --check adapt recipes tests benchmarks examples
echo "== mypy --strict"
"$PY" -m mypy --strict adapt recipes examples
echo "== pyright"
"$PY" -m pyright adapt recipes examples
echo "== docs"
"$PY" -m sphinx -W -q -b html docs docs/_build/html

if ! wait "$lowest_setup"; then
    cat "$lowest_log"
    echo "setting up .venv-lowest failed"
    exit 1
fi

# The slow tests (type checkers, wheel builds, docs screenshots, the soak)
# test the tooling and the packaging rather than the dependencies; they run
# in the main run only.  The lowest-version run comes after the main one,
# not beside it: the paramiko tests log in over ssh, and two runs' login
# shells at once race in the shell's start-up files (pyenv's rehash wrote
# to the remote command's stderr).
echo "== pytest"
"$PY" -m pytest "${xdist[@]}" "$@"

use_venv .venv-lowest test constraints/lowest.txt
echo "== pytest, lowest allowed versions (constraints/lowest.txt), not slow"
"$PY" -m pip freeze --disable-pip-version-check | grep -iE '^(wrapt|sniffio|trio|uvloop|anyio)=='
"$PY" -m pytest -q -m "not slow" "${xdist[@]}"
