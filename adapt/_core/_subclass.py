"""Shim selection for subclasses (a subclass's changed method gets no base
shim), and the sync documentation appended to each shim's methods.

``Async(obj)`` picks the shim class registered for the nearest class in
``type(obj).__mro__``.  When that is a base class, the subclass may have
changed a method the shim calls (inotify_simple's ``INotify`` subclasses
``io.FileIO`` and its ``read(timeout=...)`` returns a list): such names get
a method that raises a TypeError saying what to do instead.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Collection
from typing import Any, cast

__all__ = ["document", "for_subclass"]


def for_subclass(shim: type[Any], base: type, klass: type, own: Collection[str]) -> type[Any]:
    """``shim`` (made for ``base``) for ``klass``: minus the methods it changed.

    ``own`` names the wrapper's own methods (never the wrapped object's).

    A subclass's method of the same name may take other arguments and return
    something else (inotify_simple's ``INotify.read(timeout=...)`` returns a
    list), so the base's shim would call it wrongly.  Those names get a method
    that raises a TypeError saying what to do instead.  An override called
    the same way (a ``recv`` that serves data it buffered first) keeps the
    shim, which calls the override.
    """
    changed = sorted(
        name
        for name in dir(shim)
        if not name.startswith("_")
        and name not in own
        and hasattr(base, name)
        and getattr(klass, name, None) is not getattr(base, name)
        and not _same_call(getattr(klass, name, None), getattr(shim, name))
    )
    if not changed:
        return shim
    namespace: dict[str, Any] = {"__slots__": ()}
    for name in changed:
        namespace[name] = _refusal(name, base, klass)
    return cast(type[Any], type(shim.__name__, (shim,), namespace))


def _same_call(override: object, shim_method: object) -> bool:
    """Whether ``override`` takes the parameters of the sync method that
    ``shim_method`` (which has its signature) was made for."""
    try:
        mine = list(inspect.signature(override).parameters.values())  # type: ignore[arg-type]
        theirs = list(inspect.signature(shim_method).parameters.values())  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return False  # no signature to compare: assume the worst
    if len(mine) != len(theirs):
        return False
    positional = inspect.Parameter.POSITIONAL_ONLY
    for p, q in zip(mine, theirs, strict=True):
        if p.kind != q.kind or (p.default is p.empty) != (q.default is q.empty):
            return False
        if p.kind is not positional and p.name != q.name:
            return False
    return True


def _refusal(name: str, base: type, klass: type) -> Callable[..., Any]:
    def refuse(self: object, *args: object, **kwargs: object) -> Any:
        raise TypeError(
            f"{klass.__qualname__}.{name} is not {base.__qualname__}.{name} (the subclass "
            f"changed it), so adapt's {base.__qualname__} shim does not apply: await "
            f"read_with() / write_with() with a non-blocking call of it, or declare its "
            f"shim with adapt.reads / adapt.writes"
        )

    refuse.__name__ = name
    return refuse


def document(shim: type, wrapped: type, stop: type) -> None:
    """Append the sync method's documentation to each shim's, for ``help()``.

    Run once, when the wrapped class is known (its module may be imported
    after adapt).  The generated docstring (the one an IDE reads) stays first.
    ``stop`` is the class whose methods are the wrapper's own (``Async``).
    """
    if shim.__dict__.get("_adapt_documented") is wrapped:
        return
    for klass in shim.__mro__:
        if klass is stop:
            break
        for name, fn in vars(klass).items():
            sync = getattr(wrapped, name, None)
            doc = inspect.getdoc(sync) if sync is not None else None
            if name.startswith("_") or not inspect.isfunction(fn) or not doc:
                continue
            if getattr(fn, "_adapt_sync_doc", False):
                continue  # shared by several shims: documented by the first
            fn._adapt_sync_doc = True  # type: ignore[attr-defined]
            label = f"{wrapped.__module__}.{wrapped.__qualname__}.{name}"
            own = inspect.cleandoc(fn.__doc__ or "")
            fn.__doc__ = f"{own}\n\nThe sync method ({label}):\n\n{doc}"
    shim._adapt_documented = wrapped  # type: ignore[attr-defined]
