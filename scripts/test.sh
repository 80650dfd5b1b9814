#!/usr/bin/env bash
# Set up and run the whole test suite: lint, types, generated-code freshness,
# docs (warnings are errors) and pytest on asyncio, uvloop and trio; then the
# suite again against the lowest version of every dependency pyproject.toml
# allows (constraints/lowest.txt).
# Everything Python is installed into project-local virtual environments
# (.venv/ and .venv-lowest/), never into the system Python.  Arguments are
# passed to the first pytest run.
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

echo "== ruff"
"$PY" -m ruff check adapt recipes tests benchmarks examples
"$PY" -m ruff format --check adapt recipes tests benchmarks examples
echo "== mypy --strict"
"$PY" -m mypy --strict adapt recipes examples
echo "== pyright"
"$PY" -m pyright adapt recipes examples
echo "== docs"
"$PY" -m sphinx -W -q -b html docs docs/_build/html
echo "== pytest"
"$PY" -m pytest "$@"

# The slow tests (type checkers, wheel builds, docs screenshots, the soak)
# test the tooling and the packaging rather than the dependencies; they ran
# above.
echo "== pytest, lowest allowed versions (constraints/lowest.txt), not slow"
use_venv .venv-lowest test constraints/lowest.txt
"$PY" -m pip freeze --disable-pip-version-check | grep -iE '^(wrapt|sniffio|trio|uvloop|anyio)=='
"$PY" -m pytest -q -m "not slow"
