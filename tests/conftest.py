"""Test harness: every ``async def`` test runs on asyncio, uvloop and trio.

* ``@pytest.mark.backends("trio", ...)`` narrows the set for loop-specific tests.
* The core's tests (``CORE_MODULES``) also run on ``trio-public``: trio with
  the backend's fast path off, so the public-API fallback stays tested.
* Each run has a timeout inside the loop (``fail_after``), besides
  pytest-timeout's per-test limit outside it.
* The reliability matrix (``MATRIX_MODULES``) also runs on
  ``asyncio-debug``: asyncio's debug mode, where a loop callback or task step
  that runs for more than 50 ms of CPU fails the test (the loop-stall guard).
* ``_no_leaks`` (autouse) fails a test that leaks fds, threads, loop
  registrations or warnings (warnings are errors in pyproject's config;
  ``gc.collect()`` makes ResourceWarnings of dropped objects surface here).
  Loop registrations are checked in adapt's reactor, in the loop's own map
  and in the kernel's epoll interest list (``/proc/self/fdinfo``).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import gc
import inspect
import os
import select
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import anyio
import pytest

BACKENDS = ("asyncio", "uvloop", "trio")
CORE_MODULES = {
    "test_async_core",
    "test_async_lifecycle",
    "test_async_io",
    "test_async_property",
    "test_async_readiness",
    "test_reliability",
    "test_matrix",
}
MATRIX_MODULES = {"test_matrix"}
#: the longest a loop callback may run in asyncio-debug (the stall guard)
STALL_LIMIT = 0.05
ASYNC_TIMEOUT = 30.0


def _warm_up() -> None:
    """Open the process-wide fds that loop libraries keep (uvloop's first
    loop leaves a pipe for the whole process), so they don't count as leaks."""
    for backend, options in (("asyncio", {"use_uvloop": True}), ("trio", {})):
        anyio.run(anyio.sleep, 0, backend=backend, backend_options=options)


_warm_up()


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "backends(*names): run only on these backends")


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if not inspect.iscoroutinefunction(metafunc.function):
        return
    marker = metafunc.definition.get_closest_marker("backends")
    names = tuple(marker.args if marker else BACKENDS)
    module = metafunc.module.__name__.rpartition(".")[2]
    if "trio" in names and module in CORE_MODULES:
        names += ("trio-public",)
    if "asyncio" in names and module in MATRIX_MODULES:
        names += ("asyncio-debug",)
    metafunc.parametrize("backend", names, ids=names)


def _open_fds() -> set[int]:
    fds = set()
    for name in os.listdir("/proc/self/fd"):
        fd = int(name)
        try:
            os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            continue  # the fd of the listdir itself
        fds.add(fd)
    return fds


def _describe(fds: set[int]) -> list[str]:
    out = []
    for fd in sorted(fds):
        try:
            out.append(f"{fd} -> {os.readlink(f'/proc/self/fd/{fd}')}")
        except OSError:
            out.append(f"{fd} -> ?")
    return out


def _threads() -> set[threading.Thread]:
    # trio keeps idle worker threads cached for a while; they are not ours
    return {t for t in threading.enumerate() if not t.name.startswith("Trio thread")}


def _trio_io() -> tuple[int, int]:
    import trio

    stats = trio.lowlevel.current_statistics().io_statistics
    return (stats.tasks_waiting_read, stats.tasks_waiting_write)


def epoll_interest(epfd: int) -> set[int]:
    """The fds the epoll instance ``epfd`` watches for input or output.

    Read from the kernel's interest list (``/proc/self/fdinfo``).  Entries
    with neither ``EPOLLIN`` nor ``EPOLLOUT`` left are not counted: trio
    leaves a spent one-shot registration in place until the fd is closed.
    """
    watched = set()
    with open(f"/proc/self/fdinfo/{epfd}") as f:
        for line in f:
            if line.startswith("tfd:"):
                fields = line.split()  # tfd: FD events: HEX data: ...
                if int(fields[3], 16) & (select.EPOLLIN | select.EPOLLOUT):
                    watched.add(int(fields[1]))
    return watched


def loop_epoll_fd() -> int | None:
    """The epoll fd of the running loop (asyncio selector, uvloop or trio)."""
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:
        from trio._core._run import GLOBAL_RUN_CONTEXT

        epoll = getattr(GLOBAL_RUN_CONTEXT.runner.io_manager, "_epoll", None)
        return None if epoll is None else int(epoll.fileno())
    backend_id = getattr(loop, "_get_backend_id", None)
    if backend_id is not None:
        return int(backend_id())  # uvloop
    selector = getattr(getattr(loop, "_selector", None), "_selector", None)
    fileno = getattr(selector, "fileno", None)
    return None if fileno is None else int(fileno())


async def _registrations_left(
    trio_baseline: tuple[int, int] | None, kernel_baseline: set[int]
) -> list[str]:
    """Loop registrations still present at the end of a test, in the loop."""
    gc.collect()
    for _ in range(3):
        await anyio.sleep(0)  # let close callbacks scheduled by finalizers run
    left = []
    epfd = loop_epoll_fd()
    if epfd is not None:
        extra = epoll_interest(epfd) - kernel_baseline
        if extra:
            left.append(f"the kernel's epoll interest list still has fds {sorted(extra)}")
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:
        from adapt._backends._trio import _REACTOR

        try:
            reactor = _REACTOR.get()
        except LookupError:
            waits: list[int] = []
        else:
            waits = [*reactor.leading, *(key // 2 for key, v in reactor.followers.items() if v)]
        if waits:
            left.append(f"adapt still has waits on fds {sorted(waits)}")
        now = _trio_io()
        assert trio_baseline is not None
        if now[0] > trio_baseline[0] or now[1] > trio_baseline[1]:
            left.append(f"trio tasks waiting (read, write): {now}, at start {trio_baseline}")
        return left
    from adapt._backends._asyncio import _reactors

    reactor = _reactors.get(loop)
    if reactor is not None:
        for fd in (*reactor.readers, *reactor.writers):
            left.append(f"adapt still waits on fd {fd}")
    selector = getattr(loop, "_selector", None)
    if selector is not None:
        own = {loop._ssock.fileno()}  # type: ignore[attr-defined]
        for key in selector.get_map().values():
            if key.fd not in own:
                left.append(f"asyncio selector still has fd {key.fd}")
    return left


#: the harness's own tasks, which the stall guard leaves out
_HARNESS_TASKS: set[object] = set()


@contextlib.contextmanager
def _stall_guard() -> Iterator[list[str]]:
    """Collect the loop callbacks that ran longer than ``STALL_LIMIT``.

    Measured in thread CPU time, so a busy machine does not count; the steps
    of the harness's own task (``run_async``'s main, which runs the test body
    and ``gc.collect()``) are left out: the guard is for loop callbacks and
    the tasks the code under test runs.
    """
    stalls: list[str] = []
    original = asyncio.events.Handle._run

    def timed(handle: asyncio.events.Handle) -> None:
        start = time.thread_time()
        original(handle)
        took = time.thread_time() - start
        if took > STALL_LIMIT:
            callback = getattr(handle, "_callback", None)
            if getattr(callback, "__self__", None) not in _HARNESS_TASKS:
                stalls.append(f"{handle!r} ran {took * 1000:.0f} ms")

    asyncio.events.Handle._run = timed  # type: ignore[method-assign]
    try:
        yield stalls
    finally:
        asyncio.events.Handle._run = original  # type: ignore[method-assign]


def run_async(backend: str, fn: Callable[..., Any], **kwargs: Any) -> None:
    """Run ``fn(**kwargs)`` on ``backend`` with a timeout and a registration check."""

    async def main() -> None:
        if backend == "asyncio-debug":
            _HARNESS_TASKS.add(asyncio.current_task())
        await anyio.sleep(0)  # let the loop's own system tasks settle
        baseline = _trio_io() if backend.startswith("trio") else None
        epfd = loop_epoll_fd()
        kernel_baseline = epoll_interest(epfd) if epfd is not None else set()
        with anyio.fail_after(ASYNC_TIMEOUT):
            await fn(**kwargs)
        left = await _registrations_left(baseline, kernel_baseline)
        assert not left, f"loop registrations leaked: {left}"

    if backend == "trio":
        anyio.run(main, backend="trio")
    elif backend == "trio-public":
        from adapt._backends import _trio

        _trio.FAST_PATH = False
        try:
            anyio.run(main, backend="trio")
        finally:
            _trio.FAST_PATH = True
    elif backend == "uvloop":
        anyio.run(main, backend="asyncio", backend_options={"use_uvloop": True})
    elif backend == "asyncio-debug":
        with _stall_guard() as stalls:
            try:
                anyio.run(main, backend="asyncio", backend_options={"debug": True})
            finally:
                _HARNESS_TASKS.clear()
        assert not stalls, f"the loop stalled: {stalls}"
    else:
        anyio.run(main, backend="asyncio", backend_options={"use_uvloop": False})


@pytest.hookimpl(tryfirst=True)
def pytest_pyfunc_call(pyfuncitem: pytest.Function) -> bool | None:
    fn = pyfuncitem.obj
    if not inspect.iscoroutinefunction(fn):
        return None
    argnames = pyfuncitem._fixtureinfo.argnames
    kwargs = {name: pyfuncitem.funcargs[name] for name in argnames}
    backend = pyfuncitem.funcargs["backend"]
    run_async(backend, functools.partial(fn, **kwargs))
    return True


def pytest_collection_finish(session: pytest.Session) -> None:
    # Every test ends with full collections (the leak guard below), and a
    # full collection walks every tracked object: the libraries imported by
    # now (trio, hypothesis, uvloop, the recipes' clients...) made them cost
    # most of the suite's CPU time.  Objects alive now live as long as the
    # session: move them out of the collector's sight.  (hypothesis first:
    # importing it registers trio's PRNG, and its check that something else
    # refers to that PRNG cannot see frozen referrers.)
    import hypothesis  # noqa: F401

    gc.collect()
    gc.freeze()


@pytest.fixture(autouse=True)
def _no_leaks() -> Iterator[None]:
    gc.collect()
    fds_before = _open_fds()
    threads_before = _threads()
    yield
    gc.collect()
    deadline = 50
    while deadline and (_threads() - threads_before):
        threading.Event().wait(0.02)  # idle workers need a moment to exit
        deadline -= 1
    leaked_threads = _threads() - threads_before
    leaked_fds = _open_fds() - fds_before
    assert not leaked_fds, f"leaked fds: {_describe(leaked_fds)}"
    assert not leaked_threads, f"leaked threads: {leaked_threads}"
