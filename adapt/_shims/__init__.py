"""Shims: awaitable twins of sync methods, built in and declared by users.

Theory of operation
-------------------
A shim is a method of an ``Async`` subclass that runs the sync method in the
awaiting task through ``Async._io`` (the engine of ``read_with`` /
``write_with``), so it inherits try-first, cancellation safety and the
would-block mapping.  Shims only ever exist on the wrapper: the sync object
and its class are left as they are, and ``Async(sock)`` is not a socket.

The built-in shims are generated source (``adapt/_shims/_gen.py``, from the
catalog in ``adapt/_shims/_spec.py``).  Users declare their own with
:func:`reads` / :func:`writes`, which return a :class:`Shim` descriptor.  Its
``ParamSpec`` typing gives checkers the sync signature on the wrapper (and on
the sync object, where it stays the plain sync method); at run time it never
stays a descriptor: when its class is created, ``__set_name__`` puts a plain
function in its place -- the async one on an ``Async`` subclass, the
original sync function (tagged) on any other class, so calls cost what any
method call costs.  A tagged sync function copied into an ``Async`` subclass
is turned into its shim by ``Async.__init_subclass__``.
"""

from __future__ import annotations

import difflib
import inspect
import io
import socket
from collections.abc import Callable, Coroutine
from types import MethodType
from typing import (
    Any,
    Concatenate,
    Generic,
    ParamSpec,
    Self,
    TypeGuard,
    TypeVar,
    cast,
    overload,
)

from .._core._async import Async, ExcTypes
from .._core._subclass import document
from .._errors import READ, WRITE, WouldBlock
from ._gen import AsyncConnection, AsyncFD, AsyncFileIO, AsyncSocket, AsyncSSLSocket

__all__ = [
    "AsyncConnection",
    "AsyncFD",
    "AsyncFileIO",
    "AsyncSSLSocket",
    "AsyncSocket",
    "Shim",
    "missing_shim",
    "reads",
    "writes",
]

# help() shows the sync documentation too; for ssl and multiprocessing, once
# their module is imported and a first object is wrapped.
document(AsyncSocket, socket.socket, Async)
document(AsyncFileIO, io.FileIO, Async)

_T = TypeVar("_T")
_P = ParamSpec("_P")
_R = TypeVar("_R")

_DIRECTION_NAMES = {READ: "readable", WRITE: "writable"}


class Shim(Generic[_T, _P, _R]):
    """A sync method declared as a shim; made by :func:`reads` / :func:`writes`.

    On an :class:`~adapt.Async` subclass it is an awaitable method with the
    sync method's parameters; on any other class it is the sync method itself.
    """

    def __init__(
        self,
        method: Callable[Concatenate[_T, _P], _R],
        direction: int,
        *,
        would_block: ExcTypes = (),
        would_block_if: Callable[[_T, _R], bool] | None = None,
        ready: Callable[[_T], bool] | None = None,
    ) -> None:
        if not callable(method):
            raise TypeError(f"a shim wraps a sync method, got {method!r}")
        if not isinstance(would_block, tuple):
            would_block = (would_block,)
        for exc_type in cast(tuple[object, ...], would_block):
            if not (isinstance(exc_type, type) and issubclass(exc_type, BaseException)):
                raise TypeError(f"would_block takes exception types, got {exc_type!r}")
        self.method = method
        self.direction = direction
        self.would_block = would_block
        self.would_block_if = would_block_if
        self.ready = ready

    def __repr__(self) -> str:
        name = getattr(self.method, "__qualname__", repr(self.method))
        return f"<adapt shim: {name}, waits until {_DIRECTION_NAMES[self.direction]}>"

    # -- typing: how checkers see the attribute ------------------------------

    @overload
    def __get__(self, obj: None, owner: type[Any]) -> Self: ...

    @overload
    def __get__(
        self, obj: Async[_T], owner: type[Any]
    ) -> Callable[_P, Coroutine[Any, Any, _R]]: ...

    @overload
    def __get__(self, obj: _T, owner: type[Any]) -> Callable[_P, _R]: ...

    def __get__(self, obj: Any, owner: type[Any]) -> Any:
        # Only reached when the shim was attached after its class was made.
        if obj is None:
            return self
        if _is_wrapper(obj):
            return MethodType(self.coroutine_function(type(obj), "shim"), obj)
        return MethodType(self.method, obj)

    def __call__(self, obj: _T, /, *args: _P.args, **kwargs: _P.kwargs) -> _R:
        """``Owner.method(obj, ...)``: the sync call."""
        return self.method(obj, *args, **kwargs)

    # -- run time: replaced by a plain function ------------------------------

    def __set_name__(self, owner: type[Any], name: str) -> None:
        if _is_wrapper_class(owner):
            self.install(owner, name)
        else:
            # A class the user owns: the sync method stays as it was, tagged.
            self.method.__adapt_shim__ = self  # type: ignore[attr-defined]
            setattr(owner, name, self.method)

    def install(self, owner: type[Async[Any]], name: str) -> None:
        """Put the awaitable method ``name`` on the ``Async`` subclass ``owner``."""
        setattr(owner, name, self.coroutine_function(owner, name))

    def coroutine_function(
        self, owner: type[Async[Any]], name: str
    ) -> Callable[..., Coroutine[Any, Any, _R]]:
        """The shim as a plain function of the wrapper (``self`` first)."""
        method, direction = self.method, self.direction
        ready, would_block, would_block_if = self.ready, self.would_block, self.would_block_if

        if ready is None and not would_block and would_block_if is None:

            def shim(self: Async[Any], /, *args: Any, **kwargs: Any) -> Coroutine[Any, Any, _R]:
                return self._io(lambda obj: method(obj, *args, **kwargs), direction, self._obj)  # pyright: ignore[reportPrivateUsage]

        else:

            def shim(self: Async[Any], /, *args: Any, **kwargs: Any) -> Coroutine[Any, Any, _R]:
                def op(obj: Any) -> _R:
                    if ready is not None and not ready(obj):
                        raise WouldBlock
                    try:
                        result = method(obj, *args, **kwargs)
                    except would_block:
                        raise WouldBlock from None
                    if would_block_if is not None and would_block_if(obj, result):
                        raise WouldBlock
                    return result

                return self._io(op, direction, self._obj)  # pyright: ignore[reportPrivateUsage]

        sync_name = getattr(method, "__qualname__", name)
        shim.__name__ = name
        shim.__qualname__ = f"{owner.__qualname__}.{name}"
        shim.__module__ = owner.__module__
        waits = _DIRECTION_NAMES[direction]
        doc = f"Awaitable ``{sync_name}``: waits until {waits} while it would block."
        sync_doc = inspect.getdoc(method)
        shim.__doc__ = f"{doc}\n\n{sync_doc}" if sync_doc else doc
        try:
            sig = inspect.signature(method)
        except (TypeError, ValueError):
            pass  # a C method without a text signature
        else:
            params = list(sig.parameters.values())
            ret = sig.return_annotation
            if ret is not sig.empty:
                ret = (
                    f"Coroutine[Any, Any, {ret}]"
                    if isinstance(ret, str)
                    else Coroutine[Any, Any, ret]  # type: ignore[valid-type]
                )
            shim.__signature__ = sig.replace(  # type: ignore[attr-defined]
                parameters=[params[0].replace(name="self"), *params[1:]] if params else [],
                return_annotation=ret,
            )
        return shim


def _is_wrapper(obj: object) -> TypeGuard[Async[Any]]:
    return isinstance(obj, Async)


def _is_wrapper_class(cls: type[Any]) -> TypeGuard[type[Async[Any]]]:
    return issubclass(cls, Async)


def _declare(
    direction: int,
    method: Callable[Concatenate[_T, _P], _R] | None,
    would_block: ExcTypes,
    would_block_if: Callable[[_T, _R], bool] | None,
    ready: Callable[[_T], bool] | None,
) -> Any:
    def declare(method: Callable[Concatenate[_T, _P], _R]) -> Shim[_T, _P, _R]:
        return Shim(
            method, direction, would_block=would_block, would_block_if=would_block_if, ready=ready
        )

    return declare if method is None else declare(method)


@overload
def reads(
    method: Callable[Concatenate[_T, _P], _R],
    /,
    *,
    would_block: ExcTypes = (),
    would_block_if: Callable[[_T, _R], bool] | None = None,
    ready: Callable[[_T], bool] | None = None,
) -> Shim[_T, _P, _R]: ...


@overload
def reads(
    *,
    would_block: ExcTypes = (),
    would_block_if: Callable[[Any, Any], bool] | None = None,
    ready: Callable[[Any], bool] | None = None,
) -> Callable[[Callable[Concatenate[_T, _P], _R]], Shim[_T, _P, _R]]: ...


def reads(
    method: Callable[Concatenate[_T, _P], _R] | None = None,
    /,
    *,
    would_block: ExcTypes = (),
    would_block_if: Callable[[_T, _R], bool] | None = None,
    ready: Callable[[_T], bool] | None = None,
) -> Any:
    """Declare a sync method that reads as a shim: wait until readable while it would block.

    In an :class:`~adapt.Async` subclass, for a class you do not own::

        class AsyncSerial(Async[Serial], wraps=Serial):
            read = adapt.reads(Serial.read, would_block_if=lambda ser, data: not data)

        data = ser.read(100)                       # sync
        data = await Async(ser).read(100)          # async

    As a decorator in a class you own (it stays the plain sync method there),
    then named in its ``Async`` subclass::

        class Device:
            @adapt.reads
            def read_frame(self) -> bytes: ...

        class AsyncDevice(Async[Device], wraps=Device):
            read_frame = Device.read_frame

    Args:
        method: the sync method; it receives the wrapped object first.
        would_block: exception types the method raises for "would block"
            (besides ``BlockingIOError``, :class:`~adapt.WouldBlock`...).
        would_block_if: ``(obj, result) -> bool``: the result means "would
            block" (``b""``, ``[]``, ``None`` for many libraries).
        ready: ``obj -> bool`` run before the method; false means "would
            block" (for objects with no non-blocking mode).
    """
    return _declare(READ, method, would_block, would_block_if, ready)


@overload
def writes(
    method: Callable[Concatenate[_T, _P], _R],
    /,
    *,
    would_block: ExcTypes = (),
    would_block_if: Callable[[_T, _R], bool] | None = None,
    ready: Callable[[_T], bool] | None = None,
) -> Shim[_T, _P, _R]: ...


@overload
def writes(
    *,
    would_block: ExcTypes = (),
    would_block_if: Callable[[Any, Any], bool] | None = None,
    ready: Callable[[Any], bool] | None = None,
) -> Callable[[Callable[Concatenate[_T, _P], _R]], Shim[_T, _P, _R]]: ...


def writes(
    method: Callable[Concatenate[_T, _P], _R] | None = None,
    /,
    *,
    would_block: ExcTypes = (),
    would_block_if: Callable[[_T, _R], bool] | None = None,
    ready: Callable[[_T], bool] | None = None,
) -> Any:
    """Declare a sync method that writes as a shim: wait until writable while it would block.

    Same forms and options as :func:`reads`::

        class AsyncSerial(Async[Serial], wraps=Serial):
            write = adapt.writes(Serial.write)

        n = ser.write(b"AT\\r")                    # sync
        n = await Async(ser).write(b"AT\\r")       # async
    """
    return _declare(WRITE, method, would_block, would_block_if, ready)


def missing_shim(wrapper: Async[Any], name: str) -> AttributeError:
    """The AttributeError for ``wrapper.name``, naming the closest shim."""
    cls = type(wrapper)
    message = f"{cls.__name__!r} object has no attribute {name!r}"
    known = [n for n in dir(cls) if not n.startswith("_")]
    close = difflib.get_close_matches(name, known, n=1)
    if close:
        message += f"; did you mean {close[0]!r}?"
    try:
        wrapped = type(cast(object, wrapper.get_ref()))
    except AttributeError:
        return AttributeError(message)
    if issubclass(wrapped, io.RawIOBase) and name in _LINE_READS:
        # IOBase builds these from read() calls, and fails when one would block
        message += (
            f" ({wrapped.__name__}.{name} cannot work on a non-blocking fd: it fails "
            f"when a read would block part-way; read lines with adapt.reader())"
        )
    elif hasattr(wrapped, name):
        message += (
            f" ({wrapped.__name__}.{name} has no awaitable shim: call it on .get_ref(), "
            f"or await read_with() / write_with() with it)"
        )
    return AttributeError(message)


#: reads that ``io.IOBase`` makes of several ``read()`` calls
_LINE_READS = frozenset({"readline", "readlines", "__iter__", "__next__"})
