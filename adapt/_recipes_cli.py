"""``python -m adapt recipes list | show NAME | copy NAME DEST [--force]``.

The catalog is read from the installed ``adapt.recipes`` package as source
text: ``LIBRARY`` and ``SUMMARY`` are module-level string constants, read
with :mod:`ast`, so listing never imports a recipe or the library it adapts
(which may be missing, slow to import or have side effects).
"""

from __future__ import annotations

import argparse
import ast
import difflib
import importlib
import importlib.metadata
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["Recipe", "add_parser", "catalog", "copy", "recipes_dir"]


def recipes_dir() -> Path:
    """The folder of the installed ``adapt.recipes`` package."""
    # imported by name: the checkers see adapt/ only, recipes/ maps onto it
    package = importlib.import_module("adapt.recipes")
    assert package.__file__ is not None
    return Path(package.__file__).parent


@dataclass(frozen=True)
class Recipe:
    """One recipe module, as read from its source."""

    name: str
    path: Path
    library: str | None
    summary: str

    def installed(self) -> bool:
        """Whether the library it adapts is installed (always, for the stdlib)."""
        if self.library is None:
            return True
        try:
            importlib.metadata.distribution(self.library)
        except importlib.metadata.PackageNotFoundError:
            return False
        return True


def _constants(path: Path) -> dict[str, Any]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    found: dict[str, Any] = {}
    for node in tree.body:
        if isinstance(node, ast.Assign | ast.AnnAssign):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            for target in targets:
                if isinstance(target, ast.Name) and target.id in ("LIBRARY", "SUMMARY"):
                    if node.value is None:
                        raise ValueError(f"{path}: {target.id} has no value")
                    found[target.id] = ast.literal_eval(node.value)
    return found


def catalog(root: Path | None = None) -> dict[str, Recipe]:
    """Every recipe in ``root`` (the installed catalog by default), by name."""
    root = recipes_dir() if root is None else root
    recipes: dict[str, Recipe] = {}
    for path in sorted(root.glob("*.py")):
        if path.name.startswith("_"):
            continue
        consts = _constants(path)
        library, summary = consts.get("LIBRARY"), consts.get("SUMMARY")
        if "LIBRARY" not in consts or not isinstance(summary, str):
            raise ValueError(f"{path}: a recipe declares LIBRARY and SUMMARY (see README.md)")
        if library is not None and not isinstance(library, str):
            raise ValueError(f"{path}: LIBRARY is a distribution name or None")
        recipes[path.stem] = Recipe(path.stem, path, library, summary)
    return recipes


def _find(name: str, recipes: dict[str, Recipe]) -> Recipe:
    recipe = recipes.get(name)
    if recipe is None:
        close = difflib.get_close_matches(name, list(recipes), n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise LookupError(
            f"no recipe named {name!r}{hint}; `python -m adapt recipes list` shows them all"
        )
    return recipe


def _rewrite_imports(source: str, name: str, module: str) -> str:
    """Make ``adapt.recipes`` imports of recipe ``name`` import ``module``, the copy."""
    alias = "" if module == name else f" as {name}"
    source = re.sub(
        rf"^(\s*)from adapt\.recipes import {name}\b",
        rf"\1import {module}{alias}",
        source,
        flags=re.M,
    )
    return re.sub(rf"\badapt\.recipes\.{name}\b", module, source)


def copy(name: str, dest: Path, *, force: bool = False, root: Path | None = None) -> Path:
    """Write recipe ``name`` to ``dest`` (a folder, or a ``.py`` file path).

    Refuses to overwrite an existing file unless ``force``; returns the path.
    """
    recipe = _find(name, catalog(root))
    target = dest / f"{recipe.name}.py" if dest.is_dir() or dest.suffix != ".py" else dest
    if not target.parent.is_dir():
        raise FileNotFoundError(f"no folder {target.parent}: create it first")
    if target.exists() and not force:
        raise FileExistsError(f"{target} exists: pass --force to overwrite it")
    source = recipe.path.read_text(encoding="utf-8")
    target.write_text(_rewrite_imports(source, recipe.name, target.stem), encoding="utf-8")
    return target


def _list(args: argparse.Namespace) -> int:
    recipes = catalog()
    rows = [
        (
            r.name,
            r.library or "(standard library)",
            "yes" if r.installed() else "no",
            r.summary,
        )
        for r in recipes.values()
    ]
    header = ("NAME", "LIBRARY", "INSTALLED", "SUMMARY")
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(3)]
    for row in [header, *rows]:
        cells = [cell.ljust(width) for cell, width in zip(row[:3], widths, strict=True)]
        print("  ".join([*cells, row[3]]))
    return 0


def _show(args: argparse.Namespace) -> int:
    try:
        recipe = _find(args.name, catalog())
    except LookupError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    sys.stdout.write(recipe.path.read_text(encoding="utf-8"))
    return 0


def _copy(args: argparse.Namespace) -> int:
    try:
        target = copy(args.name, Path(args.dest), force=args.force)
    except LookupError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except (FileExistsError, FileNotFoundError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(f"wrote {target}")
    if target.stem in sys.stdlib_module_names:
        other = target.parent / f"async_{target.name}"
        print(
            f"note: {target.name} has the name of a standard library module: import it from "
            f"your package, or copy it under another name ({other})",
            file=sys.stderr,
        )
    return 0


def add_parser(subparsers: Any) -> None:
    """Add ``recipes`` and its sub-commands to ``python -m adapt``."""
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "recipes",
        help="list, show or copy the recipes (adapters for real libraries)",
        description="Short, tested adapters for real libraries: import them from "
        "adapt.recipes or copy one into your project.",
    )
    sub = parser.add_subparsers(title="commands", metavar="COMMAND", required=True)
    listing = sub.add_parser("list", help="name, library, installed?, summary of each recipe")
    listing.set_defaults(run=_list)
    show = sub.add_parser("show", help="print a recipe's source")
    show.add_argument("name")
    show.set_defaults(run=_show)
    copying = sub.add_parser("copy", help="write a recipe into your project")
    copying.add_argument("name")
    copying.add_argument("dest", help="a folder (the file keeps the recipe's name) or a .py path")
    copying.add_argument("--force", action="store_true", help="overwrite an existing file")
    copying.set_defaults(run=_copy)
