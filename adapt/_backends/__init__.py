"""Backend selection: which event loop library is running this task.

Backends are imported on first use, so importing adapt never imports trio.
"""

from __future__ import annotations

import sniffio

from ._base import Backend, LoopToken, Reactor, Waiter

__all__ = ["Backend", "LoopToken", "Reactor", "Waiter", "current_backend", "running_reactor"]

_cache: dict[str, Backend] = {}


def current_backend() -> Backend:
    """The backend for the async library running the current task.

    Raises ``RuntimeError`` when called outside a running event loop, or under
    a library adapt does not support.
    """
    try:
        name = sniffio.current_async_library()
    except sniffio.AsyncLibraryNotFoundError:
        raise RuntimeError("adapt needs a running asyncio (or uvloop) or trio event loop") from None
    try:
        return _cache[name]
    except KeyError:
        pass
    backend: Backend
    if name == "asyncio":
        from ._asyncio import BACKEND as backend
    elif name == "trio":
        from ._trio import BACKEND as backend
    else:
        raise RuntimeError(f"adapt does not support the {name!r} async library")
    _cache[name] = backend
    return backend


def running_reactor() -> Reactor | None:
    """The reactor of the loop running in this thread, or None."""
    try:
        sniffio.current_async_library()
    except sniffio.AsyncLibraryNotFoundError:
        return None
    try:
        return current_backend().reactor()
    except RuntimeError:
        return None
