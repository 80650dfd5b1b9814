"""A short bounded run of the soak (benchmarks/soak.py) on each loop.

The soak does the same work round after round through adapt's public API
and fails (exit 1) when memory, fds or threads are not flat after warm-up.
The long run is by hand: ``python benchmarks/soak.py --seconds 300``.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

SOAK = Path(__file__).resolve().parent.parent / "benchmarks" / "soak.py"


@pytest.mark.slow
@pytest.mark.timeout(120)
@pytest.mark.parametrize("loop", ["asyncio", "uvloop", "trio"])
def test_soak_is_flat(loop: str) -> None:
    proc = subprocess.run(
        [
            sys.executable,
            str(SOAK),
            "--loop",
            loop,
            "--seconds",
            "0",
            "--scale",
            "0.05",
            "--warmup",
            "1",
        ],
        capture_output=True,
        text=True,
        timeout=110,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    lines = proc.stdout.strip().splitlines()
    assert lines[-1] == "FLAT"
    assert "wait/cancel/close cycles" in lines[-3]
