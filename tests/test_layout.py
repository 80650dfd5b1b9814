"""The package's layers: imports point one way, and no module imports itself back.

Type-only imports (under ``if TYPE_CHECKING:``) are exempt: the shim
overloads of ``Async.__new__`` name the shim classes for type checkers only.
"""

from __future__ import annotations

import ast
from pathlib import Path

import adapt

ROOT = Path(adapt.__file__).parent

#: each layer and the layers it may import at run time (besides its own)
LAYERS: dict[str, set[str]] = {
    "base": set(),  # _errors, _resource, _cancel and the loop backends
    "core": {"base"},
    "shims": {"base", "core"},
    "streams": {"base", "core"},
    "offload": {"base"},
    "bridges": {"base"},
    "monitor": {"base"},
    "cli": {"base", "monitor"},
}


def layer(module: str) -> str:
    part = module.split(".")[1] if "." in module else ""
    return {
        "_errors": "base",
        "_resource": "base",
        "_cancel": "base",
        "_backends": "base",
        "_core": "core",
        "_shims": "shims",
        "_streams": "streams",
        "_offload": "offload",
        "_bridges": "bridges",
        "_monitor": "monitor",
        "_cli": "cli",
        "_recipes_cli": "cli",
        "__main__": "cli",
    }.get(part, "package")


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def is_module(name: str) -> bool:
    path = ROOT.parent.joinpath(*name.split("."))
    return path.with_suffix(".py").exists() or (path / "__init__.py").exists()


def runtime_imports(path: Path) -> set[str]:
    """The adapt modules ``path`` imports when it runs."""
    tree = ast.parse(path.read_text())
    name = module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()

    def visit(node: ast.AST) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and "TYPE_CHECKING" in ast.unparse(child.test):
                for orelse in child.orelse:
                    visit(orelse)
                continue
            if isinstance(child, ast.ImportFrom):
                if child.level:
                    base = package.split(".")[: len(package.split(".")) - (child.level - 1)]
                    target = ".".join(base + ([child.module] if child.module else []))
                else:
                    target = child.module or ""
                if target.startswith("adapt"):
                    found.add(target)
                    found.update(
                        f"{target}.{alias.name}"
                        for alias in child.names
                        if is_module(f"{target}.{alias.name}")
                    )
            elif isinstance(child, ast.Import):
                found.update(a.name for a in child.names if a.name.startswith("adapt"))
            visit(child)

    visit(tree)
    return found


def modules() -> dict[str, set[str]]:
    return {
        module_name(path): runtime_imports(path)
        for path in sorted(ROOT.rglob("*.py"))
        if "_boot" not in path.parts
    }


def test_imports_point_one_way() -> None:
    wrong = []
    for name, imports in modules().items():
        here = layer(name)
        if here == "package":
            continue
        for target in imports:
            there = layer(target)
            if there != here and there not in LAYERS[here]:
                wrong.append(f"{name} ({here}) imports {target} ({there})")
    assert not wrong, "\n".join(wrong)


def test_no_import_cycles() -> None:
    graph = modules()
    # a package's __init__ is imported before its modules: only edges between
    # modules count, and "adapt.x" imported as a package means its __init__
    done: set[str] = set()
    path: list[str] = []

    def walk(name: str) -> None:
        if name in path:
            raise AssertionError("import cycle: " + " -> ".join([*path[path.index(name) :], name]))
        if name in done:
            return
        path.append(name)
        for target in sorted(graph.get(name, ())):
            if target != "adapt" and not name.startswith(target + "."):
                walk(target)
        path.pop()
        done.add(name)

    for name in graph:
        walk(name)


def test_the_checks_see_imports() -> None:
    graph = modules()
    assert "adapt._core._fd" in graph["adapt._core._async"]
    assert "adapt._backends" in graph["adapt._core._async"]
    assert "adapt._shims" not in graph["adapt._core._async"]  # type-only
