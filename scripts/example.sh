#!/usr/bin/env bash
# Set up and run the main example: an async inotify directory watcher.
# Installs into a project-local virtual environment (.venv/), never into the
# system Python.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/_venv.sh
use_venv .venv example
"$PY" examples/inotify/watch.py "$@"  # no arguments: the demo
