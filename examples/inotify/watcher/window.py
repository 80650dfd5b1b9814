"""One debounce window: raw inotify events in, a short list of changes out.

- ``MOVED_FROM`` and ``MOVED_TO`` carry the same cookie when one rename
  produced them: they become one ``renamed`` change.  A ``MOVED_TO`` whose
  cookie was not seen came from outside the tree (``moved_in``); a
  ``MOVED_FROM`` still unpaired when the window closes went outside
  (``moved_out``).  The kernel queues both halves of a rename together, so
  they land in one read.
- Repeats collapse: a file written in 1,000 small writes is one
  ``modified`` change per window, and a file created in this window is
  reported as ``created`` only.
- The tree's watches are updated as the events are read, so the events that
  follow a directory rename are already named by the new path.
"""

from __future__ import annotations

from dataclasses import dataclass

from inotify_simple import Event, flags

from .tree import Tree

EVENTS = ("created", "modified", "deleted", "renamed", "moved_in", "moved_out", "overflow")


@dataclass(frozen=True)
class Change:
    """One line of output."""

    event: str  # one of EVENTS
    path: str  # relative to the watched root
    is_dir: bool = False
    src: str | None = None  # the old path, for "renamed"
    detail: str | None = None  # what "overflow" did about it


class Window:
    """Collects the changes of one debounce window."""

    def __init__(self, tree: Tree) -> None:
        self._tree = tree
        self._changes: dict[tuple[str, str, str | None], Change] = {}
        self._created: set[str] = set()
        self._moved_from: dict[int, tuple[str, bool]] = {}
        self.root_gone = False

    def _add(self, change: Change) -> None:
        self._changes.setdefault((change.event, change.path, change.src), change)

    def feed(self, events: list[Event]) -> None:
        for event in events:
            self._feed_one(event)

    def _feed_one(self, event: Event) -> None:
        tree = self._tree
        mask = event.mask
        if mask & flags.Q_OVERFLOW:
            count = tree.rescan()
            detail = f"events were lost; rescanned {count} directories"
            self._add(Change("overflow", ".", True, detail=detail))
            return
        if mask & (flags.IGNORED | flags.DELETE_SELF):
            if tree.is_root(event.wd):
                self.root_gone = True
            if mask & flags.IGNORED:
                tree.forget(event.wd)
            return
        path = tree.path_of(event.wd, event.name)
        if path is None:  # from a watch dropped a moment ago
            return
        is_dir = bool(mask & flags.ISDIR)
        if mask & flags.CREATE:
            self._created.add(path)
            self._add(Change("created", path, is_dir))
            if is_dir:
                for child, child_is_dir in tree.add(path):
                    self._created.add(child)
                    self._add(Change("created", child, child_is_dir))
        elif mask & flags.MODIFY:
            if path not in self._created:
                self._add(Change("modified", path, is_dir))
        elif mask & flags.DELETE:
            self._add(Change("deleted", path, is_dir))
            if is_dir:
                tree.drop(path)
        elif mask & flags.MOVED_FROM:
            # "moved_out" until its other half shows up, in this read or a later one
            self._moved_from[event.cookie] = (path, is_dir)
            self._add(Change("moved_out", path, is_dir))
        elif mask & flags.MOVED_TO:
            half = self._moved_from.pop(event.cookie, None)
            if half is None:
                self._add(Change("moved_in", path, is_dir))
                if is_dir:
                    tree.add(path)
            else:
                self._changes.pop(("moved_out", half[0], None), None)
                self._add(Change("renamed", path, is_dir, src=half[0]))
                if is_dir:
                    tree.rename(half[0], path)

    def close(self) -> list[Change]:
        """The window's changes, in the order they first happened."""
        for path, is_dir in self._moved_from.values():
            if is_dir:  # its watches would follow it out of the tree
                self._tree.drop(path)
        self._moved_from.clear()
        return list(self._changes.values())
