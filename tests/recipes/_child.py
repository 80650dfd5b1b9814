"""Run a recipe's docstring example in a fresh Python process.

For examples that need a process of their own: signals blocked before any
thread starts, stdin that is a terminal, a pipe or a file.  The example's
closing ``asyncio.run(main())`` is replaced by a run of ``main`` on the
backend given (asyncio, uvloop or trio); the child prints ``example ok`` at
the end and exits non-zero on any failure.
"""

from __future__ import annotations

import subprocess
import sys
from types import ModuleType
from typing import Any

from ._example import RUN_LINE, example_source

BACKENDS = ("asyncio", "uvloop", "trio")

RUNNER = """
import anyio as _anyio, sys as _sys
_b = _sys.argv[1]
_opts = {} if _b == "trio" else {"use_uvloop": _b == "uvloop"}
_anyio.run(main, backend="trio" if _b == "trio" else "asyncio", backend_options=_opts)
print("example ok", flush=True)
"""


def example_command(module: ModuleType, backend: str, prelude: str = "") -> list[str]:
    """The command that runs the example; ``prelude`` (code) defines the
    names the example leaves to its reader, such as a port's path."""
    source = example_source(module).removesuffix(RUN_LINE)
    return [sys.executable, "-c", prelude + source + RUNNER, backend]


def run_example(module: ModuleType, backend: str, prelude: str = "", **popen: Any) -> str:
    """Run the example to its end; its stdout (``example ok`` checked)."""
    proc = subprocess.run(
        example_command(module, backend, prelude),
        capture_output=True,
        text=True,
        timeout=50,
        check=False,
        **popen,
    )
    assert proc.returncode == 0, f"example failed:\n{proc.stdout}\n{proc.stderr}"
    assert proc.stdout.rstrip().endswith("example ok"), proc.stdout
    return proc.stdout
