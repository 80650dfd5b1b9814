"""An async directory watcher built on adapt and inotify_simple.

    python examples/inotify/watch.py                 # the demo, in a temp dir
    python examples/inotify/watch.py DIR             # watch DIR until Ctrl-C
    python examples/inotify/watch.py DIR --loop trio --json
    python examples/inotify/watch.py DIR --exec 'make test'

The code is the ``watcher`` package beside this file; start reading at
``watcher/source.py``.
"""

import sys

from watcher.cli import main

if __name__ == "__main__":
    sys.exit(main())
