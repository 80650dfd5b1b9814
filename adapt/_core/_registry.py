"""The shim registry: which ``Async`` subclass wraps objects of which type.

``class AsyncX(Async[X], wraps=X)`` registers through :func:`register`;
``Async(obj)`` asks :func:`shim_for` for the class of ``type(obj)`` -- the
nearest registered class in its MRO, minus the methods a subclass changed
(see ``_subclass``) -- and :func:`blocking_by_default` for its mode.  The
functions take ``Async`` as ``base``, so this module does not import it.
"""

from __future__ import annotations

import sys
from typing import Any

from ._subclass import document, for_subclass

__all__ = ["blocking_by_default", "register", "shim_for"]

#: shim classes by the type they wrap, filled by ``Async.__init_subclass__``
_SHIMS: dict[type, type[Any]] = {}
#: shim classes declared by dotted name (``wraps="ssl.SSLSocket"``), so adapt
#: need not import ssl or multiprocessing: each is looked up once its module is
#: imported (no object of the class can exist before)
_LAZY_SHIMS: dict[str, type[Any]] = {}
#: shim classes that leave the fd in blocking mode unless told otherwise
_BLOCKING_SHIMS: set[type[Any]] = set()
#: the shim class for each concrete type wrapped so far (``base`` when none)
_RESOLVED: dict[type, type[Any]] = {}


def shim_for(klass: type, base: type[Any]) -> type[Any]:
    """The shim class for objects of type ``klass``: the nearest in its MRO
    (``base``, ``Async`` itself, when none is)."""
    found = _RESOLVED.get(klass)
    if found is not None:
        return found
    for dotted in [d for d in _LAZY_SHIMS if d.rpartition(".")[0] in sys.modules]:
        shim = _LAZY_SHIMS.pop(dotted)
        module, _, qualname = dotted.rpartition(".")
        wrapped = getattr(sys.modules[module], qualname, None)
        if not isinstance(wrapped, type):
            raise TypeError(f"{shim.__qualname__}: wraps={dotted!r} names no class")
        _SHIMS.setdefault(wrapped, shim)
        document(shim, wrapped, base)
    found = base
    for parent in klass.__mro__:
        known = _SHIMS.get(parent)
        if known is not None:
            found = known
            if parent is not klass:
                found = for_subclass(known, parent, klass, vars(base))
            break
    _RESOLVED[klass] = found
    return found


def blocking_by_default(klass: type[Any]) -> bool:
    """Whether objects of shim class ``klass`` keep their fd blocking by default."""
    return klass in _BLOCKING_SHIMS


def register(
    cls: type[Any], wraps: type | str | None, nonblocking: bool | None, base: type[Any]
) -> None:
    """Register the shim class ``cls`` (an ``Async`` subclass; ``base`` is
    ``Async``) for ``wraps``: see ``Async.__init_subclass__``."""
    if nonblocking is None:
        nonblocking = not any(base in _BLOCKING_SHIMS for base in cls.__mro__)
    if not nonblocking:
        _BLOCKING_SHIMS.add(cls)
    if wraps is None:
        return
    if isinstance(wraps, str):
        if "." not in wraps:
            raise ValueError(f"wraps={wraps!r}: give the class or its dotted name")
        _LAZY_SHIMS[wraps] = cls
    elif isinstance(wraps, type):  # pyright: ignore[reportUnnecessaryIsInstance]
        if issubclass(wraps, base):
            raise TypeError("wraps= names the sync class, not an Async subclass")
        _SHIMS[wraps] = cls
    else:
        raise TypeError(f"wraps= takes a class, got {wraps!r}")
    _RESOLVED.clear()
