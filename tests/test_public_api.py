"""The public surface: ``adapt.__all__`` is complete, explicit and importable."""

from __future__ import annotations
import __future__

import subprocess
import sys
import types

import adapt


def test_all_is_exactly_the_public_names() -> None:
    public = {
        name
        for name, value in vars(adapt).items()
        if not name.startswith("_")
        and not isinstance(value, (types.ModuleType, __future__._Feature))
    }
    assert set(adapt.__all__) == public
    assert len(adapt.__all__) == len(set(adapt.__all__)), "duplicates in __all__"


def test_every_public_name_is_documented() -> None:
    for name in adapt.__all__:
        obj = getattr(adapt, name)
        assert getattr(obj, "__doc__", None), f"adapt.{name} has no docstring"


def test_public_objects_live_in_private_modules() -> None:
    for name in adapt.__all__:
        module = getattr(getattr(adapt, name), "__module__", "adapt._")
        assert module.startswith("adapt._"), (name, module)


def test_star_import() -> None:
    namespace: dict[str, object] = {}
    exec("from adapt import *", namespace)
    assert set(adapt.__all__) <= set(namespace)


def test_import_is_light() -> None:
    code = (
        "import sys, adapt\n"
        "heavy = [m for m in ('trio', 'uvloop', 'anyio', 'outcome') if m in sys.modules]\n"
        "sys.exit(str(heavy) if heavy else 0)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
