"""Human lines or JSON lines, one per change, on stdout."""

from __future__ import annotations

import json
from typing import TextIO

from .window import Change

LABELS = {
    "created": "created",
    "modified": "modified",
    "deleted": "deleted",
    "renamed": "renamed",
    "moved_in": "moved in",
    "moved_out": "moved out",
    "overflow": "overflow",
}


def human(change: Change) -> str:
    """``renamed    a/x.txt -> b/x.txt``; directories end in ``/``."""
    slash = "/" if change.is_dir and change.event != "overflow" else ""
    what = f"{change.path}{slash}"
    if change.src is not None:
        what = f"{change.src}{slash} -> {what}"
    if change.detail is not None:
        what = change.detail
    return f"{LABELS[change.event]:<10} {what}"


def as_json(change: Change) -> str:
    """``{"event": "renamed", "path": "b/x.txt", "src": "a/x.txt", "dir": false}``"""
    line: dict[str, str | bool] = {"event": change.event, "path": change.path}
    if change.src is not None:
        line["src"] = change.src
    line["dir"] = change.is_dir
    if change.detail is not None:
        line["detail"] = change.detail
    return json.dumps(line)


class Printer:
    def __init__(self, out: TextIO, *, json_lines: bool) -> None:
        self._out = out
        self._format = as_json if json_lines else human

    def __call__(self, changes: list[Change]) -> None:
        for change in changes:
            print(self._format(change), file=self._out)
        self._out.flush()
