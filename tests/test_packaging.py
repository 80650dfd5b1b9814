"""The distributions: what a user installs works on its own.

Builds the sdist and the wheel from this checkout, installs the wheel into a
fresh virtual environment (its dependencies come from the package index, at
the newest versions the floors allow), and runs the README's example and the
command line there -- outside the checkout, so nothing is imported from it.
"""

from __future__ import annotations

import re
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]


def _run(*args: str | Path, cwd: Path | None = None) -> str:
    result = subprocess.run(
        [str(a) for a in args], cwd=cwd, capture_output=True, text=True, timeout=540
    )
    assert result.returncode == 0, f"{args}\n{result.stdout}\n{result.stderr}"
    return result.stdout


@pytest.fixture(scope="module")
def dists(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    out = tmp_path_factory.mktemp("dist")
    _run(sys.executable, "-m", "build", "--sdist", "--wheel", "--outdir", out, ROOT)
    (wheel,) = out.glob("adapt-*.whl")
    (sdist,) = out.glob("adapt-*.tar.gz")
    return {"wheel": wheel, "sdist": sdist}


def test_wheel_holds_the_package_and_recipes_not_the_checkout(dists: dict[str, Path]) -> None:
    names = set(zipfile.ZipFile(dists["wheel"]).namelist())
    assert {"adapt/__init__.py", "adapt/py.typed", "adapt/__main__.py"} <= names
    assert {"adapt/recipes/__init__.py", "adapt/recipes/README.md"} <= names
    # python -m adapt doctor puts this folder on the program's PYTHONPATH
    assert "adapt/_monitor/_boot/sitecustomize.py" in names
    tops = {name.split("/")[0] for name in names}
    assert tops == {"adapt", "adapt-0.1.0.dist-info"}, tops  # no top-level "recipes"
    assert "adapt-0.1.0.dist-info/licenses/LICENSE" in names
    metadata = zipfile.ZipFile(dists["wheel"]).read("adapt-0.1.0.dist-info/METADATA").decode()
    assert "License-Expression: MIT" in metadata


def test_sdist_builds_the_package_and_leaves_the_tests_out(dists: dict[str, Path]) -> None:
    with tarfile.open(dists["sdist"]) as tar:
        names = {name.partition("/")[2] for name in tar.getnames()}
    assert {"LICENSE", "README.md", "pyproject.toml", "adapt/py.typed"} <= names
    assert "recipes/README.md" in names
    # the tests need the checkout's servers and tooling: none of them ships
    assert not {n for n in names if n.startswith(("tests/", "benchmarks/", "docs/"))}


def test_installed_wheel_runs_the_readme_example(dists: dict[str, Path], tmp_path: Path) -> None:
    _run(sys.executable, "-m", "venv", tmp_path / "venv")
    py = tmp_path / "venv" / "bin" / "python"
    _run(py, "-m", "pip", "install", "-q", "--disable-pip-version-check", dists["wheel"])
    readme = (ROOT / "README.md").read_text()
    example = re.findall(r"```python\n(.*?)```", readme, re.S)[0]
    # run from an empty directory so that nothing comes from the checkout
    out = _run(py, "-c", example, cwd=tmp_path)
    assert out.splitlines() == ["b'ping'", "b'pong'"]
    where = _run(py, "-c", "import adapt; print(adapt.__file__)", cwd=tmp_path)
    assert where.startswith(str(tmp_path / "venv")), where
    assert "usage: python -m adapt" in _run(py, "-m", "adapt", "--help", cwd=tmp_path)
