"""The type tests in ``tests/type_tests/`` pass under mypy --strict and pyright strict.

Each negative case is a line carrying both ``# type: ignore[code]`` (for
mypy) and ``# pyright: ignore[rule]`` (for pyright).  Two checks:

* as written, both checkers are clean -- mypy fails on an unused ignore
  (``--warn-unused-ignores``) and pyright on an unnecessary one
  (``reportUnnecessaryTypeIgnoreComment``, with ``type: ignore`` disabled), so
  every negative case does produce its error;
* with the comments stripped, each checker reports exactly the errors the
  comments name, on exactly those lines -- nothing more, nothing less.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

TYPE_TESTS = Path(__file__).parent / "type_tests"
ROOT = Path(__file__).parent.parent

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]

_MYPY_IGNORE = re.compile(r"  # type: ignore\[([^\]]+)\]")
_PYRIGHT_IGNORE = re.compile(r"  # pyright: ignore\[([^\]]+)\]")


def _mypy(folder: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "mypy",
            "--strict",
            "--follow-imports=silent",  # report on the type tests only
            "--no-error-summary",
            *extra,
            str(folder),
        ],
        capture_output=True,
        text=True,
        cwd=ROOT,
    )


def _pyright(folder: Path) -> subprocess.CompletedProcess[str]:
    # the one installed beside this python (its venv need not be activated)
    pyright = shutil.which("pyright", path=str(Path(sys.executable).parent))
    assert pyright is not None, "pyright is part of the dev extras"
    return subprocess.run(
        [pyright, "--outputjson", "-p", str(folder / "pyrightconfig.json")],
        capture_output=True,
        text=True,
        cwd=ROOT,
    )


def _expected(pattern: re.Pattern[str]) -> set[tuple[str, int, str]]:
    found = set()
    for path in sorted(TYPE_TESTS.glob("*.py")):
        for number, line in enumerate(path.read_text().splitlines(), 1):
            for match in pattern.finditer(line):
                for code in match.group(1).split(","):
                    found.add((path.name, number, code.strip()))
    return found


def test_type_tests_have_negative_cases() -> None:
    mypy_cases = _expected(_MYPY_IGNORE)
    pyright_cases = _expected(_PYRIGHT_IGNORE)
    assert len({(f, n) for f, n, _ in mypy_cases}) >= 15
    assert {(f, n) for f, n, _ in mypy_cases} == {(f, n) for f, n, _ in pyright_cases}


def test_mypy_clean() -> None:
    result = _mypy(TYPE_TESTS, "--warn-unused-ignores")
    assert result.returncode == 0, result.stdout + result.stderr


def test_pyright_clean() -> None:
    result = _pyright(TYPE_TESTS)
    report = json.loads(result.stdout)
    messages = [
        f"{d['file']}:{d['range']['start']['line'] + 1}: {d['message']}"
        for d in report["generalDiagnostics"]
    ]
    assert report["summary"]["errorCount"] == 0, "\n".join(messages)
    assert report["summary"]["filesAnalyzed"] == len(list(TYPE_TESTS.glob("*.py")))


@pytest.fixture
def stripped(tmp_path: Path) -> Path:
    """A copy of the type tests without their ignore comments."""
    folder = tmp_path / "type_tests"
    folder.mkdir()
    for path in TYPE_TESTS.iterdir():
        if path.suffix == ".py":
            text = _PYRIGHT_IGNORE.sub("", _MYPY_IGNORE.sub("", path.read_text()))
            (folder / path.name).write_text(text)
    config = json.loads((TYPE_TESTS / "pyrightconfig.json").read_text())
    config["extraPaths"] = [str(ROOT)]
    (folder / "pyrightconfig.json").write_text(json.dumps(config))
    return folder


def test_mypy_reports_exactly_the_negative_cases(stripped: Path) -> None:
    result = _mypy(stripped)
    found = set()
    for line in result.stdout.splitlines():
        match = re.match(r"(?:.*/)?([\w.]+\.py):(\d+): error: .*\[([\w-]+)\]$", line)
        if match:
            found.add((match.group(1), int(match.group(2)), match.group(3)))
    assert found == _expected(_MYPY_IGNORE), result.stdout


def test_pyright_reports_exactly_the_negative_cases(stripped: Path) -> None:
    result = _pyright(stripped)
    report = json.loads(result.stdout)
    found = {
        (Path(d["file"]).name, d["range"]["start"]["line"] + 1, d.get("rule", "?"))
        for d in report["generalDiagnostics"]
        if d["severity"] == "error"
    }
    assert found == _expected(_PYRIGHT_IGNORE), json.dumps(report["generalDiagnostics"], indent=1)
