#!/usr/bin/env bash
# Set up and run the main example: an async inotify directory watcher.
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -m pip install -q -e '.[example]'
python3 examples/inotify/watch.py --demo
