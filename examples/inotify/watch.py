"""An async directory watcher built on adapt and inotify_simple.

    python examples/inotify/watch.py                 # the demo, in a temp dir
    python examples/inotify/watch.py DIR             # watch DIR until Ctrl-C
    python examples/inotify/watch.py DIR --loop trio --json
    python examples/inotify/watch.py DIR --exec 'make test'

The code is the ``watcher`` package beside this file; start reading at
``watcher/source.py``.
"""

import sys

try:
    from watcher.cli import main
except ModuleNotFoundError as missing:  # inotify_simple, anyio or adapt itself
    sys.exit(
        f"watch.py needs the module {missing.name!r}: from the repository root, run\n"
        "    pip install -e '.[example]'"
    )

if __name__ == "__main__":
    sys.exit(main())
