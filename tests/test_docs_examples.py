"""Every example the docs show runs and prints what its ``# Output:`` block says.

The docs include these files (``literalinclude``); an example that is a
helper module (no ``# Output:`` block) must be imported by one that runs.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "docs" / "examples"
SCRIPTS = sorted(p for p in EXAMPLES.glob("*.py") if "\n# Output:\n" in p.read_text())


def expected_output(path: Path) -> list[str]:
    block = path.read_text().split("\n# Output:\n", 1)[1]
    return [line.removeprefix("# ").removeprefix("#") for line in block.splitlines()]


@pytest.mark.parametrize("path", SCRIPTS, ids=[p.stem for p in SCRIPTS])
def test_example_prints_its_output(path: Path, tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-W", "error", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == expected_output(path)


def test_every_example_runs_or_is_imported() -> None:
    sources = "\n".join(p.read_text() for p in SCRIPTS)
    for path in EXAMPLES.glob("*.py"):
        if path not in SCRIPTS:
            assert re.search(rf"^(from|import) {path.stem}\b", sources, re.M), (
                f"{path.name} has no '# Output:' block and no example imports it"
            )


def test_docs_include_no_test_files() -> None:
    """Examples come from docs/examples or examples/, never from tests (asserts and all)."""
    for page in (ROOT / "docs").rglob("*.rst"):
        for target in re.findall(r"\.\. (?:literal)?include:: (\S+)", page.read_text()):
            assert "tests/" not in target, f"{page.name} includes {target}"
