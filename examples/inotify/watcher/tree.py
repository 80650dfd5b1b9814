"""One inotify watch per directory of the tree, kept in step with the tree.

inotify is not recursive: each directory needs its own watch, and a watch
identifies its directory by a number (``wd``), not by a path.  This module
keeps the two maps (``wd -> path`` and ``path -> wd``) and the rules:

- a new directory gets a watch, then is scanned: whatever was created in it
  before the watch landed would otherwise be missed (``mkdir -p a/b/c``
  creates ``b`` before ``a`` is watched).  Watch first, scan second: an
  entry created in between shows up twice, and the debounce window merges it;
- a directory renamed inside the tree keeps its watches (they follow the
  inode); only the paths change;
- a directory deleted or moved out of the tree loses its watches;
- after a queue overflow every path is checked again (:meth:`Tree.rescan`).

Paths are relative to the watched root, with ``/`` separators; the root is ``""``.
"""

from __future__ import annotations

import os

from inotify_simple import INotify, flags

MASK = (
    flags.CREATE
    | flags.MODIFY
    | flags.DELETE
    | flags.MOVED_FROM
    | flags.MOVED_TO
    | flags.DELETE_SELF
    | flags.ONLYDIR
    | flags.DONT_FOLLOW
)


def join(parent: str, name: str) -> str:
    return f"{parent}/{name}" if parent else name


def is_under(path: str, top: str) -> bool:
    return path == top or path.startswith(top + "/")


class Tree:
    """The watched directories of one tree."""

    def __init__(self, root: str, inotify: INotify) -> None:
        self.root = os.path.abspath(root)
        self._inotify = inotify
        self._paths: dict[int, str] = {}
        self._wds: dict[str, int] = {}

    def __len__(self) -> int:
        return len(self._wds)

    def absolute(self, path: str) -> str:
        return os.path.join(self.root, path) if path else self.root

    def path_of(self, wd: int, name: str) -> str | None:
        """The path of entry ``name`` in watched directory ``wd``, or None if unknown."""
        parent = self._paths.get(wd)
        return None if parent is None else join(parent, name)

    def is_root(self, wd: int) -> bool:
        return self._paths.get(wd) == ""

    def add(self, path: str) -> list[tuple[str, bool]]:
        """Watch directory ``path`` and every directory below it.

        Returns the entries found below it, ``(path, is_dir)``, parents first.
        A directory that is gone by the time it is reached is skipped.
        """
        found: list[tuple[str, bool]] = []
        self._add(path, found)
        return found

    def _add(self, path: str, found: list[tuple[str, bool]]) -> None:
        try:
            wd = self._inotify.add_watch(self.absolute(path), MASK)
        except (FileNotFoundError, NotADirectoryError, PermissionError):
            return
        self._remember(wd, path)
        try:
            with os.scandir(self.absolute(path)) as scan:
                entries = sorted((e.name, e.is_dir(follow_symlinks=False)) for e in scan)
        except (FileNotFoundError, NotADirectoryError, PermissionError):
            return
        for name, is_dir in entries:
            found.append((join(path, name), is_dir))
            if is_dir:
                self._add(join(path, name), found)

    def _remember(self, wd: int, path: str) -> None:
        # The kernel hands back the same wd for a directory watched twice
        # (after a rename this process did not see): the new path wins.
        old = self._paths.get(wd)
        if old is not None and old != path:
            del self._wds[old]
        self._paths[wd] = path
        self._wds[path] = wd

    def drop(self, path: str) -> None:
        """Stop watching ``path`` and everything below it (deleted or moved away)."""
        for sub, wd in list(self._wds.items()):
            if is_under(sub, path):
                self.forget(wd)
                try:
                    self._inotify.rm_watch(wd)
                except OSError:  # EINVAL: the kernel already dropped it
                    pass

    def forget(self, wd: int) -> None:
        """The kernel dropped watch ``wd`` (``IN_IGNORED``)."""
        path = self._paths.pop(wd, None)
        if path is not None and self._wds.get(path) == wd:
            del self._wds[path]

    def rename(self, src: str, dst: str) -> None:
        """Directory ``src`` is now ``dst``: its watches stay, the paths change."""
        for sub, wd in list(self._wds.items()):
            if is_under(sub, src):
                new = dst + sub[len(src) :]
                del self._wds[sub]
                self._paths[wd] = new
                self._wds[new] = wd

    def rescan(self) -> int:
        """Check every watch again after lost events; returns the directories watched."""
        for path in list(self._wds):
            if path and not os.path.isdir(self.absolute(path)):
                self.drop(path)
        self.add("")
        return len(self._wds)
