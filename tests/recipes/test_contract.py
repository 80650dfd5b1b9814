"""Every recipe follows the contract in recipes/README.md."""

from __future__ import annotations

import ast
import importlib.metadata
import re
import sys
from pathlib import Path

import pytest

import adapt
from adapt._recipes_cli import catalog

ROOT = Path(__file__).resolve().parent.parent.parent
RECIPES = sorted(catalog())
SECTIONS = ("Requires:", "Platforms:", "Adapts:", "Caveats:", "Example::")


def _tree(name: str) -> ast.Module:
    return ast.parse((ROOT / "recipes" / f"{name}.py").read_text())


@pytest.mark.parametrize("name", RECIPES)
def test_docstring_sections_and_summary(name: str) -> None:
    doc = ast.get_docstring(_tree(name))
    assert doc, f"{name}: no docstring"
    positions = [doc.find(f"\n{section}") for section in SECTIONS]
    assert all(p > 0 for p in positions), f"{name}: sections {SECTIONS} missing"
    assert positions == sorted(positions), f"{name}: sections out of order"
    assert catalog()[name].summary == doc.splitlines()[0]


@pytest.mark.parametrize("name", RECIPES)
def test_imports_only_stdlib_its_library_and_public_adapt(name: str) -> None:
    library = catalog()[name].library
    allowed = set(sys.stdlib_module_names) | {"__future__"}
    if library is not None:
        owners = importlib.metadata.packages_distributions()
        canonical = re.sub(r"[-_.]+", "-", library).lower()
        allowed |= {
            mod
            for mod, dists in owners.items()
            if canonical in {re.sub(r"[-_.]+", "-", d).lower() for d in dists}
        }
    for node in ast.walk(_tree(name)):
        if isinstance(node, ast.Import):
            modules = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            assert node.level == 0, f"{name}: relative import"
            modules = [node.module or ""]
            if node.module == "adapt":
                for alias in node.names:
                    assert alias.name in adapt.__all__, f"{name}: adapt.{alias.name} is not public"
        else:
            continue
        for module in modules:
            top = module.partition(".")[0]
            assert module == "adapt" or top in allowed, f"{name} imports {module}"


@pytest.mark.parametrize("name", RECIPES)
def test_documented_and_tested(name: str) -> None:
    page = ROOT / "docs" / "recipes" / f"{name}.rst"
    assert f"literalinclude:: ../../recipes/{name}.py" in page.read_text()
    tests = (ROOT / "tests" / "recipes" / f"test_{name}.py").read_text()
    # example_main: on the test's loop; run_example / example_command: in a
    # child process (signals blocked at its start, a terminal as stdin...)
    runs = ("example_main(recipe", "run_example(recipe", "example_command(recipe")
    assert any(run in tests for run in runs), f"{name}: its Example is not run by a test"
    assert "async def test_" in tests
