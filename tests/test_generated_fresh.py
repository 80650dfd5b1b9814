"""The generated shims and docs listing match the catalog, and the catalog the real classes."""

from __future__ import annotations

import importlib
import inspect
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import adapt
from adapt._shims import _generate
from adapt._shims._spec import CATALOG, TypeSpec

ROOT = Path(__file__).parent.parent


def test_generated_files_are_fresh() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "adapt._shims._generate", "--check"],
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert _generate.MODULE.read_text() == _generate.render_module()
    assert _generate.DOCS.read_text() == _generate.render_docs(_generate.DOCS.read_text())


def test_check_fails_on_a_stale_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    module = tmp_path / "adapt" / "_shims" / "_gen.py"
    docs = tmp_path / "docs" / "shims.rst"
    module.parent.mkdir(parents=True)
    docs.parent.mkdir()
    module.write_text(_generate.MODULE.read_text().replace("Awaitable", "Awaitible", 1))
    docs.write_text(_generate.DOCS.read_text())
    monkeypatch.setattr(_generate, "ROOT", tmp_path)
    monkeypatch.setattr(_generate, "MODULE", module)
    monkeypatch.setattr(_generate, "DOCS", docs)
    assert _generate.main(["--check"]) == 1
    assert "stale: adapt/_shims/_gen.py" in capsys.readouterr().out
    assert _generate.main([]) == 0  # rewrites it
    assert _generate.main(["--check"]) == 0
    assert module.read_text() == _generate.render_module()


def test_docs_without_markers_is_an_error() -> None:
    with pytest.raises(ValueError, match="marker"):
        _generate.render_docs("shims\n=====\n")


def test_generated_module_is_ruff_clean() -> None:
    ruff = shutil.which("ruff", path=str(Path(sys.executable).parent))
    assert ruff is not None, "ruff is part of the dev extras"
    path = str(_generate.MODULE)
    fmt = subprocess.run([ruff, "format", "--diff", path], capture_output=True, text=True)
    assert fmt.returncode == 0, fmt.stdout + fmt.stderr
    lint = subprocess.run([ruff, "check", path], capture_output=True, text=True)
    assert lint.returncode == 0, lint.stdout + lint.stderr


def _wrapped(spec: TypeSpec) -> type:
    module, _, name = spec.wraps.rpartition(".")
    wrapped = getattr(importlib.import_module(module), name)
    assert isinstance(wrapped, type)
    return wrapped


def _shape(sig: inspect.Signature) -> list[tuple[str, object, object]]:
    return [(p.name, p.kind, p.default) for p in sig.parameters.values()]


@pytest.mark.parametrize("spec", CATALOG, ids=lambda spec: spec.name)
def test_shims_carry_the_stub_signature(spec: TypeSpec) -> None:
    shim_class = getattr(adapt, spec.name)
    assert spec.name in adapt.__all__
    for name, _ in spec.rules():
        stub = inspect.signature(getattr(spec.stub, name))
        shim = inspect.signature(getattr(shim_class, name))
        assert _shape(shim) == _shape(stub), f"{spec.name}.{name}"


@pytest.mark.parametrize("spec", CATALOG, ids=lambda spec: spec.name)
def test_stubs_match_the_real_methods(spec: TypeSpec) -> None:
    """Where the real method has an introspectable signature, the stub's is its prefix.

    (Methods written in C often have none; the type checkers compare those
    with typeshed -- see ``check_conformance`` in ``adapt/_shims/_spec.py``.)
    """
    wrapped = _wrapped(spec)
    checked = 0
    for name, rule in spec.rules():
        if rule.call is not None:
            continue  # not a method of the wrapped type (os.read on an int fd)
        real = getattr(wrapped, name)
        try:
            real_sig = inspect.signature(real)
        except ValueError:
            continue
        stub = _shape(inspect.signature(getattr(spec.stub, name)))[1:]  # without self
        assert _shape(real_sig)[1 : len(stub) + 1] == stub, f"{spec.wraps}.{name}"
        checked += 1
    if spec.name in ("AsyncSSLSocket", "AsyncFileIO", "AsyncConnection"):
        assert checked >= 3


@pytest.mark.parametrize("spec", CATALOG, ids=lambda spec: spec.name)
def test_docs_list_every_shim(spec: TypeSpec) -> None:
    text = _generate.DOCS.read_text()
    assert f":class:`adapt.{spec.name}`" in text
    for name, _ in spec.rules():
        assert f"``{name}(" in text
