"""watcher: an async, recursive directory watcher built on adapt and inotify_simple.

Modules, in reading order:

- :mod:`watcher.source` -- the only adapt code: inotify's fd made awaitable;
- :mod:`watcher.tree` -- one inotify watch per directory, added and dropped as
  the tree changes;
- :mod:`watcher.window` -- one debounce window: renames paired by cookie,
  bursts coalesced;
- :mod:`watcher.output` -- human lines or JSON lines;
- :mod:`watcher.command` -- ``--exec``: run a command on change, never two at once;
- :mod:`watcher.demo` -- the changes the demo makes;
- :mod:`watcher.cli` -- the command line and the main loop.
"""
