"""``python -m adapt recipes ...``: from the checkout and from an installed wheel."""

from __future__ import annotations

import subprocess
import sys
import venv
from pathlib import Path

import pytest

from adapt._recipes_cli import catalog, copy, recipes_dir

ROOT = Path(__file__).parent.parent

#: the recipes this checkout ships (the catalog must list exactly these)
SHIPPED = sorted(p.stem for p in (ROOT / "recipes").glob("*.py") if not p.name.startswith("_"))


def _cli(
    *args: str, python: str = sys.executable, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [python, "-m", "adapt", *args], capture_output=True, text=True, timeout=60, cwd=cwd
    )


def _recipe(folder: Path, name: str, library: str | None, body: str = "") -> Path:
    path = folder / f"{name}.py"
    path.write_text(
        f'"""{name}: a test recipe."""\n{body}\nLIBRARY = {library!r}\nSUMMARY = "adapts {name}"\n'
    )
    return path


def test_catalog_reads_constants_without_importing(tmp_path: Path) -> None:
    # importing either module would fail: the catalog must not import them
    _recipe(tmp_path, "ghost", "no-such-distribution-adapt-test", "import no_such_module_adapt")
    _recipe(tmp_path, "stdlib", None, "raise SystemExit('imported!')")
    _recipe(tmp_path, "_private", None)
    found = catalog(tmp_path)
    assert sorted(found) == ["ghost", "stdlib"]
    assert found["ghost"].library == "no-such-distribution-adapt-test"
    assert not found["ghost"].installed()
    assert found["stdlib"].installed()
    assert found["stdlib"].summary == "adapts stdlib"


def test_catalog_refuses_a_recipe_without_constants(tmp_path: Path) -> None:
    (tmp_path / "bare.py").write_text('"""no constants"""\n')
    with pytest.raises(ValueError, match="LIBRARY and SUMMARY"):
        catalog(tmp_path)


def test_copy_refuses_to_overwrite_and_rewrites_imports(tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    _recipe(
        src,
        "thing",
        None,
        '"""Example::\n\n    from adapt.recipes import thing\n    adapt.recipes.thing.go()\n"""',
    )
    dest = tmp_path / "project"
    dest.mkdir()
    target = copy("thing", dest, root=src)
    assert target == dest / "thing.py"
    text = target.read_text()
    assert "    import thing\n" in text
    assert "    thing.go()" in text
    assert "adapt.recipes" not in text
    target.write_text("# my edits\n")
    with pytest.raises(FileExistsError, match="--force"):
        copy("thing", dest, root=src)
    assert target.read_text() == "# my edits\n"  # nothing changed
    copy("thing", dest, force=True, root=src)
    assert "SUMMARY" in target.read_text()
    renamed = copy("thing", dest / "other.py", root=src)
    assert "    import other as thing\n" in renamed.read_text()
    with pytest.raises(LookupError, match="did you mean 'thing'"):
        copy("thin", dest, root=src)
    with pytest.raises(FileNotFoundError, match="create it first"):
        copy("thing", tmp_path / "missing" / "x.py", root=src)


def test_help_lists_recipes() -> None:
    result = _cli("--help")
    assert result.returncode == 0, result.stderr
    assert "recipes" in result.stdout
    result = _cli("recipes", "--help")
    assert result.returncode == 0, result.stderr
    for word in ("list", "show", "copy"):
        assert word in result.stdout


def test_shipped_catalog_from_the_checkout(tmp_path: Path) -> None:
    assert recipes_dir() == ROOT / "recipes"
    assert sorted(catalog()) == SHIPPED
    _check_cli(sys.executable, tmp_path)


def _check_cli(python: str, tmp_path: Path) -> None:
    listing = _cli("recipes", "list", python=python, cwd=tmp_path)
    assert listing.returncode == 0, listing.stderr
    lines = listing.stdout.splitlines()
    assert lines[0].split() == ["NAME", "LIBRARY", "INSTALLED", "SUMMARY"]
    assert sorted(line.split()[0] for line in lines[1:]) == SHIPPED
    missing = _cli("recipes", "show", "no-such-recipe", python=python, cwd=tmp_path)
    assert missing.returncode == 2
    assert "no recipe named 'no-such-recipe'" in missing.stderr
    # not into the working folder: there a copy named like a standard library
    # module (subprocess.py) would shadow it for every program run there
    project = tmp_path / "project"
    project.mkdir()
    for name in SHIPPED:
        shown = _cli("recipes", "show", name, python=python, cwd=tmp_path)
        assert shown.returncode == 0, shown.stderr
        assert shown.stdout == (ROOT / "recipes" / f"{name}.py").read_text()
        copy_args = ("recipes", "copy", name, str(project))
        copied = _cli(*copy_args, python=python, cwd=tmp_path)
        assert copied.returncode == 0, copied.stderr
        text = (project / f"{name}.py").read_text()
        assert "adapt.recipes" not in text  # the example imports the copy
        assert text.replace(f"from {name} import", f"from adapt.recipes.{name} import") == (
            shown.stdout
        )
        assert ("standard library module" in copied.stderr) == (name in sys.stdlib_module_names)
        again = _cli(*copy_args, python=python, cwd=tmp_path)
        assert again.returncode == 1
        assert "--force" in again.stderr
        forced = _cli(*copy_args, "--force", python=python, cwd=tmp_path)
        assert forced.returncode == 0, forced.stderr


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_from_an_installed_wheel(tmp_path: Path) -> None:
    wheels = tmp_path / "wheels"
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", str(ROOT), "--no-deps", "-q", "-w", str(wheels)],
        check=True,
        capture_output=True,
        timeout=240,
    )
    (wheel,) = wheels.glob("adapt-*.whl")
    env_dir = tmp_path / "venv"
    venv.create(env_dir, with_pip=True)
    python = str(env_dir / "bin" / "python")
    subprocess.run(
        [python, "-m", "pip", "install", "-q", str(wheel)],
        check=True,
        capture_output=True,
        timeout=240,
    )
    work = tmp_path / "work"  # not the checkout: the installed package must answer
    work.mkdir()
    where = subprocess.run(
        [python, "-c", "import adapt.recipes, sys; print(adapt.recipes.__file__)"],
        capture_output=True,
        text=True,
        cwd=work,
        check=True,
    )
    assert str(env_dir) in where.stdout
    no_top_level = subprocess.run(
        [python, "-c", "import recipes"], capture_output=True, text=True, cwd=work
    )
    assert no_top_level.returncode != 0
    assert _cli("--help", python=python, cwd=work).returncode == 0
    _check_cli(python, work)
