"""A monitor on every loop a program runs, without changing the program.

:class:`LoopHooks` wraps the three places a loop starts running:

* asyncio: ``BaseEventLoop.run_forever`` (``asyncio.run``,
  ``run_until_complete`` and anyio all end up there);
* uvloop: ``uvloop.Loop`` is replaced in the ``uvloop`` module by a
  subclass whose ``run_forever`` is wrapped (``uvloop.run``,
  ``uvloop.new_event_loop`` and anyio's ``use_uvloop`` make their loops
  from that name);
* trio: ``trio.run`` is replaced by one that runs the main function inside
  a monitor.

Each run gets its own :class:`~adapt._monitor._core.Monitor`, started when
the loop starts and stopped when it stops; every stall goes to one
``on_stall`` callback.  ``uvloop`` and ``trio`` are patched when they are
imported (an import hook), so installing the hooks imports neither.
``python -m adapt doctor`` installs them from a ``sitecustomize`` module in
the program's process (:func:`install_from_env`); the ``adapt_no_stalls``
pytest fixture installs them for one test.
"""

from __future__ import annotations

import atexit
import functools
import importlib.abc
import importlib.machinery
import json
import os
import sys
import threading
import time
import types
from collections.abc import Callable, Sequence
from typing import Any

from ._core import Monitor
from ._report import Stall

__all__ = ["ENV", "LoopHooks", "install_from_env"]

#: the environment variable ``python -m adapt doctor`` passes its settings in
ENV = "ADAPT_DOCTOR"

_installed: list[LoopHooks] = []


class _PatchLoader(importlib.abc.Loader):
    """Runs a module's own loader, then patches the module."""

    def __init__(self, loader: importlib.abc.Loader, patch: Callable[[types.ModuleType], None]):
        self._loader = loader
        self._patch = patch

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> types.ModuleType | None:
        return self._loader.create_module(spec)

    def exec_module(self, module: types.ModuleType) -> None:
        self._loader.exec_module(module)
        self._patch(module)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._loader, name)  # resources, get_source...


class _PatchOnImport(importlib.abc.MetaPathFinder):
    def __init__(self, patches: dict[str, Callable[[types.ModuleType], None]]) -> None:
        self.patches = patches

    def find_spec(
        self,
        fullname: str,
        path: Sequence[str] | None,
        target: types.ModuleType | None = None,
    ) -> importlib.machinery.ModuleSpec | None:
        patch = self.patches.get(fullname)
        if patch is None:
            return None
        for finder in sys.meta_path:
            if finder is self or not hasattr(finder, "find_spec"):
                continue
            spec = finder.find_spec(fullname, path, target)
            if spec is not None:
                if spec.loader is not None:
                    spec.loader = _PatchLoader(spec.loader, patch)
                return spec
        return None


class LoopHooks:
    """Monitors every asyncio, uvloop and trio loop run while installed."""

    def __init__(
        self,
        threshold: float,
        on_stall: Callable[[Stall], None],
        on_run: Callable[[float], None] | None = None,
    ) -> None:
        Monitor(threshold)  # checks the threshold now, with a clear error
        self.threshold = threshold
        self.on_stall = on_stall
        self.on_run = on_run  # called with the seconds each loop run was watched
        self.monitored = 0.0  # seconds of loop running time watched
        self._lock = threading.Lock()
        self._undo: list[Callable[[], None]] = []
        self._finder: _PatchOnImport | None = None
        self._active: set[int] = set()  # id() of the loops being watched

    # -- install / uninstall ---------------------------------------------------

    def install(self) -> None:
        if _installed:
            raise RuntimeError("loop hooks are installed already (one set per process)")
        import asyncio.base_events

        base = asyncio.base_events.BaseEventLoop
        original = base.run_forever
        base.run_forever = self._wrap_run_forever(original)  # type: ignore[method-assign,assignment]
        self._undo.append(lambda: setattr(base, "run_forever", original))
        patches: dict[str, Callable[[types.ModuleType], None]] = {
            "uvloop": self._patch_uvloop,
            "trio": self._patch_trio,
        }
        for name, patch in list(patches.items()):
            module = sys.modules.get(name)
            if module is not None:
                patch(module)
                del patches[name]
        if patches:
            self._finder = _PatchOnImport(patches)
            sys.meta_path.insert(0, self._finder)
        _installed.append(self)

    def uninstall(self) -> None:
        if self._finder is not None:
            if self._finder in sys.meta_path:
                sys.meta_path.remove(self._finder)
            self._finder = None
        while self._undo:
            self._undo.pop()()
        if self in _installed:
            _installed.remove(self)

    # -- the patches -------------------------------------------------------------

    def _wrap_run_forever(self, original: Callable[[Any], None]) -> Callable[[Any], None]:
        hooks = self

        @functools.wraps(original)
        def run_forever(loop: Any) -> None:
            if loop.is_closed() or loop.is_running() or id(loop) in hooks._active:
                return original(loop)  # let the loop raise its own error
            monitor = Monitor(hooks.threshold, on_stall=hooks.on_stall)
            monitor._start_asyncio(loop)  # pyright: ignore[reportPrivateUsage]
            hooks._active.add(id(loop))
            try:
                return original(loop)
            finally:
                hooks._active.discard(id(loop))
                hooks._stopped(monitor)

        return run_forever

    def _patch_uvloop(self, module: types.ModuleType) -> None:
        base: type[Any] = module.Loop
        run_forever = self._wrap_run_forever(base.run_forever)

        class Loop(base):  # type: ignore[misc]
            __doc__ = base.__doc__

            def run_forever(self) -> None:
                run_forever(self)

        Loop.__module__ = base.__module__
        Loop.__qualname__ = base.__qualname__
        setattr(module, "Loop", Loop)  # noqa: B010 (a module attribute checkers don't know)
        self._undo.append(lambda: setattr(module, "Loop", base))

    def _patch_trio(self, module: types.ModuleType) -> None:
        original = module.run
        hooks = self

        @functools.wraps(original)
        def run(async_fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
            async def monitored(*args: Any) -> Any:
                monitor = Monitor(hooks.threshold, on_stall=hooks.on_stall)
                monitor._start_trio()  # pyright: ignore[reportPrivateUsage]
                try:
                    return await async_fn(*args)
                finally:
                    hooks._stopped(monitor)

            return original(monitored, *args, **kwargs)

        setattr(module, "run", run)  # noqa: B010 (a module attribute checkers don't know)
        self._undo.append(lambda: setattr(module, "run", original))

    def _stopped(self, monitor: Monitor) -> None:
        monitor._stop()  # pyright: ignore[reportPrivateUsage]
        seconds = monitor.report().monitored
        with self._lock:
            self.monitored += seconds
        if self.on_run is not None:
            self.on_run(seconds)


def install_from_env() -> LoopHooks | None:
    """In a program run by ``python -m adapt doctor``: install the hooks,
    sending each stall to the doctor as a JSON line, and an ``exit`` line
    when the program exits."""
    raw = os.environ.get(ENV)
    if not raw:
        return None
    settings = json.loads(raw)
    try:
        out = os.fdopen(int(settings["fd"]), "w", buffering=1, encoding="utf-8")
    except OSError:
        return None  # a program the doctor's program started: not ours to watch
    os.set_inheritable(out.fileno(), False)
    lock = threading.Lock()

    def write(record: dict[str, Any]) -> None:
        line = json.dumps(record) + "\n"
        with lock:
            try:
                out.write(line)
            except (OSError, ValueError):
                pass  # the doctor is gone; the program carries on

    def on_stall(stall: Stall) -> None:
        write({"stall": stall.to_dict()})

    def on_run(seconds: float) -> None:
        write({"run": {"pid": os.getpid(), "seconds": seconds}})

    hooks = LoopHooks(float(settings["threshold"]), on_stall, on_run)
    hooks.install()
    write({"start": {"pid": os.getpid(), "time": time.time()}})
    # registered first, so it runs last: after the program's own exit handlers
    atexit.register(write, {"exit": os.getpid()})
    return hooks
