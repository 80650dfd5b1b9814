"""The ``python -m adapt`` command line: one sub-command per tool.

Each sub-command lives in its own module, which provides
``add_parser(subparsers)``: it adds its parser and sets ``run`` (a function
taking the parsed arguments and returning the exit status) as the parser's
default.  This module only puts them together, so ``python -m adapt --help``
lists every tool and a broken optional tool cannot break the others.
"""

from __future__ import annotations

import argparse
import importlib
from collections.abc import Sequence

__all__ = ["main"]

#: sub-command modules, in the order ``--help`` lists them
COMMANDS = ("adapt._recipes_cli", "adapt._monitor._cli")


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(
        prog="python -m adapt",
        description="adapt: use synchronous Python libraries from async code.",
    )
    sub = top.add_subparsers(title="commands", metavar="COMMAND")
    for name in COMMANDS:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if not exc.name or not name.startswith(exc.name):
                raise
            continue  # this tool is not part of this install
        module.add_parser(sub)
    return top


def main(argv: Sequence[str] | None = None) -> int:
    top = parser()
    args = top.parse_args(argv)
    run = getattr(args, "run", None)
    if run is None:
        top.print_help()
        return 2
    status = run(args)
    return int(status or 0)
