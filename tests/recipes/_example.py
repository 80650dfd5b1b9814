"""Run a recipe's docstring ``Example::`` in a fresh Python process.

The example defines ``async def main()``; the child runs it on the backend
given (asyncio, uvloop or trio) and exits non-zero on any failure.  A fresh
process gives the example a clean thread and signal state, a terminal of its
own where the test provides one, and no fds shared with the test process.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from types import ModuleType
from typing import Any

BACKENDS = ("asyncio", "uvloop", "trio")

RUNNER = """
import anyio as _anyio, sys as _sys
_b = _sys.argv[1]
_opts = {} if _b == "trio" else {"use_uvloop": _b == "uvloop"}
_anyio.run(main, backend="trio" if _b == "trio" else "asyncio", backend_options=_opts)
print("example ok", flush=True)
"""


def example_source(module: ModuleType) -> str:
    """The code of ``module``'s docstring ``Example::`` block."""
    doc = module.__doc__ or ""
    assert "Example::\n" in doc, f"{module.__name__} has no Example:: block"
    return textwrap.dedent(doc.split("Example::\n", 1)[1])


def example_command(module: ModuleType, backend: str, prelude: str = "") -> list[str]:
    """The command that runs the example; ``prelude`` (code) defines the
    names the example leaves to its reader, such as a port's path."""
    return [sys.executable, "-c", prelude + example_source(module) + RUNNER, backend]


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
