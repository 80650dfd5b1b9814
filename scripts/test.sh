#!/usr/bin/env bash
# Set up and run the whole test suite: lint, types, generated-code freshness,
# docs (warnings are errors) and pytest on asyncio, uvloop and trio.
set -euo pipefail
cd "$(dirname "$0")/.."

# Debian packages for the real servers the tests start (mosquitto) and the
# TLS certificates they make (openssl).
need=()
command -v mosquitto >/dev/null 2>&1 || [ -x /usr/sbin/mosquitto ] || need+=(mosquitto)
command -v openssl >/dev/null 2>&1 || need+=(openssl)
command -v socat >/dev/null 2>&1 || need+=(socat)
command -v bc >/dev/null 2>&1 || need+=(bc)
if [ ${#need[@]} -gt 0 ]; then
    if [ "$(id -u)" = 0 ]; then
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}"
    else
        sudo apt-get update -qq
        sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}"
    fi
fi

python3 -m pip install -q -e '.[dev]'

echo "== ruff"
python3 -m ruff check adapt tests benchmarks examples
python3 -m ruff format --check adapt tests benchmarks examples
echo "== mypy --strict"
python3 -m mypy --strict adapt examples
echo "== pyright"
python3 -m pyright adapt examples
echo "== docs"
python3 -m sphinx -W -q -b html docs docs/_build/html
echo "== pytest"
python3 -m pytest "$@"
