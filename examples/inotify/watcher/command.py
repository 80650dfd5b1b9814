"""``--exec CMD``: run a shell command after changes, never two at once.

Each debounce window hands its changes to :meth:`CommandRunner.submit`.  The
runner starts the command with the changed paths (absolute, one per line)
in ``$WATCH_CHANGED``.  Changes that arrive while it runs are collected and
start one more run after it exits.  On shutdown a running command's
process group gets SIGTERM, then SIGKILL after a grace period.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys

import anyio
import anyio.abc

from .window import Change

ENV_VAR = "WATCH_CHANGED"
GRACE = 5.0  # seconds between SIGTERM and SIGKILL on shutdown


class CommandRunner:
    def __init__(self, command: str, root: str) -> None:
        self.command = command
        self._root = root
        self._pending: dict[str, None] = {}  # insertion-ordered set
        self._wake = anyio.Event()

    def submit(self, changes: list[Change]) -> None:
        for change in changes:
            for path in (change.src, change.path):
                if path is not None:
                    self._pending[os.path.normpath(os.path.join(self._root, path))] = None
        if self._pending:
            self._wake.set()

    async def run(self) -> None:
        """Run the command once per batch of pending changes, until cancelled."""
        while True:
            await self._wake.wait()
            self._wake = anyio.Event()
            paths, self._pending = list(self._pending), {}
            await self._run_once(paths)

    async def _run_once(self, paths: list[str]) -> None:
        print(f"exec: {self.command} ({len(paths)} changed)", file=sys.stderr, flush=True)
        env = dict(os.environ, **{ENV_VAR: "\n".join(paths)})
        process = await anyio.open_process(
            self.command,
            stdin=subprocess.DEVNULL,
            stdout=None,
            stderr=None,
            env=env,
            start_new_session=True,  # its own process group: stopped as a whole
        )
        try:
            status = await process.wait()
        finally:
            if process.returncode is None:
                with anyio.CancelScope(shield=True):
                    await _stop(process)
        print(f"exec: exited with status {status}", file=sys.stderr, flush=True)


async def _stop(process: anyio.abc.Process) -> None:
    try:
        os.killpg(process.pid, signal.SIGTERM)
    except ProcessLookupError:
        pass
    with anyio.move_on_after(GRACE):
        await process.wait()
        return
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    await process.wait()
