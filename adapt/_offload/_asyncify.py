"""``@asyncify``: sync functions, methods, classes and objects, run in threads.

Theory of operation
-------------------
*Functions.*  A decorator that returns a plain ``async def`` closure breaks
as soon as it meets a descriptor: stacked over ``@classmethod`` it receives
an object that is not callable, and stacked under it the ``cls`` argument
goes missing.  wrapt's ``FunctionWrapper`` binds like the function it wraps
(functions, methods, classmethods, staticmethods, builtins alike) and hands
the wrapper the already-bound callable, which is exactly what a worker
thread must call.  It also keeps ``__name__``, ``__doc__``, ``__wrapped__``
and hence ``inspect.signature``.

One thing wrapt's transparency gets wrong for us: ``inspect.iscoroutinefunction``
looks at ``__code__.co_flags`` (through ``__func__`` for methods), and the
proxy forwards both to the *sync* function.  So the wrapper classes below
answer ``__code__`` with a copy of the function's code object that carries
the coroutine flag, and the bound wrapper answers ``__func__`` with its
unbound parent.  ``asyncio.iscoroutinefunction`` and frameworks that
dispatch on it then see the truth: calling the wrapper returns a coroutine.

*Objects.*  A transparent proxy that turns a sync object's methods into
coroutines while claiming to be the sync class misleads ``isinstance`` and
types everything as ``Any``.  :class:`AsyncObject` is its own type, forwards
only public *methods* (found with ``inspect.getattr_static``, so no property
runs in the loop), and refuses data attributes with an error that says how
to read them.  Its own names (``get_ref``, ``run_with``, ``aclose``) never
collide with forwarded ones: those win, and ``run_with`` reaches the rest.

*Pinned objects.*  ``pin=True`` gives the object a dedicated thread: every
call runs there, one at a time, in order.  ``asyncify(cls, pin=True)``
constructs the instance in that thread too, for objects that check the
thread that created them (``sqlite3``).  The thread ends with ``aclose()``
or when the facade is garbage-collected.
"""

from __future__ import annotations

import functools
import inspect
import types
import weakref
from collections.abc import Callable, Coroutine
from typing import (
    TYPE_CHECKING,
    Any,
    Concatenate,
    Generic,
    ParamSpec,
    Protocol,
    TypeVar,
    cast,
    overload,
)

import wrapt

from .._backends import current_backend
from .._errors import ClosedResourceError
from .._resource import AsyncResource
from ._limiter import CapacityLimiter
from ._threads import Pinned, offload, offload_pinned

__all__ = ["AsyncClass", "AsyncObject", "asyncify"]

P = ParamSpec("P")
P2 = ParamSpec("P2")
R = TypeVar("R")
R2 = TypeVar("R2")
T = TypeVar("T")
T2 = TypeVar("T2")


async def _async_stub() -> None:
    pass


def _innermost(target: object) -> object:
    """The plain function behind descriptors and wrappers, if any."""
    fn: Any = target
    while True:
        if isinstance(fn, classmethod | staticmethod | types.MethodType):
            fn = cast(Any, fn).__func__
        elif isinstance(fn, functools.partial):
            fn = cast(Any, fn).func
        else:
            return fn


def _coroutine_code(fn: object) -> types.CodeType:
    code = getattr(_innermost(fn), "__code__", None)
    if isinstance(code, types.CodeType):
        return code.replace(co_flags=code.co_flags | inspect.CO_COROUTINE)
    return _async_stub.__code__  # builtins and callables without code


if TYPE_CHECKING:
    # wrapt's stubs make its wrappers generic; before wrapt 2.2 the classes
    # themselves are not subscriptable at run time
    _BoundFunctionWrapper = wrapt.BoundFunctionWrapper[..., Any]
    _FunctionWrapper = wrapt.FunctionWrapper[..., Any]
else:
    _BoundFunctionWrapper = wrapt.BoundFunctionWrapper
    _FunctionWrapper = wrapt.FunctionWrapper


class _BoundAsyncWrapper(_BoundFunctionWrapper):
    """``obj.method`` / ``Cls.classmethod`` of an asyncified function."""

    @property
    def __code__(self) -> types.CodeType:
        return self._self_parent.__code__  # type: ignore[no-any-return]

    @property
    def __func__(self) -> Any:
        return self._self_parent

    @property
    def __defaults__(self) -> Any:
        return self._self_parent.__defaults__

    @property
    def __kwdefaults__(self) -> Any:
        return self._self_parent.__kwdefaults__


class _AsyncWrapper(_FunctionWrapper):
    """An asyncified function: calling it returns a coroutine."""

    __bound_function_wrapper__ = _BoundAsyncWrapper

    def __init__(self, wrapped: Any, wrapper: Any) -> None:
        super().__init__(wrapped, wrapper)
        self._self_code = _coroutine_code(wrapped)
        inner = _innermost(wrapped)
        self._self_defaults = getattr(inner, "__defaults__", None)
        self._self_kwdefaults = getattr(inner, "__kwdefaults__", None)

    @property
    def __code__(self) -> types.CodeType:
        return self._self_code

    @property
    def __defaults__(self) -> Any:
        return self._self_defaults

    @property
    def __kwdefaults__(self) -> Any:
        return self._self_kwdefaults


def _is_function(target: object) -> bool:
    return inspect.isroutine(target) or isinstance(
        target, classmethod | staticmethod | functools.partial
    )


def _check_function(target: object) -> None:
    inner = _innermost(target)
    if inspect.iscoroutinefunction(inner) or inspect.isasyncgenfunction(inner):
        raise TypeError(f"asyncify() got {_describe(target)}, which is already async")
    if inspect.isgeneratorfunction(inner):
        raise TypeError(
            f"asyncify() got the generator function {_describe(target)}: it would only "
            "create the generator in a thread; iterate it with adapt.iterate() instead"
        )


def _describe(target: object) -> str:
    return str(getattr(_innermost(target), "__qualname__", None) or repr(target))


def _asyncify_function(
    fn: Callable[P, R], limiter: CapacityLimiter | None, abandon: bool
) -> Callable[P, Coroutine[Any, Any, R]]:
    _check_function(fn)

    def call(
        wrapped: Callable[..., R], instance: object, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> Coroutine[Any, Any, R]:
        return offload(wrapped, args, kwargs, limiter, abandon)

    return _AsyncWrapper(fn, call)


# -- objects ------------------------------------------------------------------


class _Core:
    """What an object facade's methods need (they must not keep it alive)."""

    __slots__ = ("abandon", "closed", "limiter", "obj", "pinned")

    def __init__(
        self, obj: object, pinned: Pinned | None, limiter: CapacityLimiter | None, abandon: bool
    ) -> None:
        self.obj = obj
        self.pinned = pinned
        self.limiter = limiter
        self.abandon = abandon
        self.closed = False

    async def call(self, fn: Callable[..., R], args: tuple[Any, ...], kwargs: dict[str, Any]) -> R:
        if self.closed:
            raise ClosedResourceError(f"this async facade of {_type_name(self.obj)} was closed")
        if self.pinned is not None:
            return await offload_pinned(self.pinned, fn, args, kwargs, self.abandon)
        return await offload(fn, args, kwargs, self.limiter, self.abandon)


def _type_name(obj: object) -> str:
    return type(obj).__qualname__


def _make_method(core: _Core, name: str) -> Callable[..., Coroutine[Any, Any, Any]]:
    obj = core.obj
    try:
        static = inspect.getattr_static(obj, name)
    except AttributeError:
        raise AttributeError(f"{_type_name(obj)!r} object has no attribute {name!r}") from None
    if not (callable(static) or isinstance(static, classmethod | staticmethod)):
        raise AttributeError(
            f"{_type_name(obj)}.{name} is not a method, and an async facade offloads only "
            f"methods: read it with `await facade.run_with(lambda o: o.{name})`"
        )
    bound = getattr(obj, name)
    if inspect.iscoroutinefunction(bound):
        raise AttributeError(
            f"{_type_name(obj)}.{name} is already async: call it on facade.get_ref()"
        )

    async def method(*args: Any, **kwargs: Any) -> Any:
        return await core.call(bound, args, kwargs)

    functools.update_wrapper(method, bound)
    return method


class AsyncObject(AsyncResource, Generic[T]):
    """An async facade on a sync object: its public methods run in threads.

    Made by ``asyncify(obj)`` (or ``AsyncObject(obj)``, which type checkers
    prefer for objects that are themselves callable, like
    ``sqlite3.Connection``)::

        rows = session.get(url).json()                                  # sync
        s = asyncify(session); rows = (await s.get(url)).json()         # async

    Public methods of the object come back as coroutine functions
    (``facade.get`` is ``async``).  Attributes that are not methods are not
    forwarded: read them with :meth:`run_with`.  ``pin=True`` runs every call
    in one dedicated thread, in order; see ``asyncify(cls, pin=True)`` to
    construct the object there as well.  ``limiter`` and
    ``abandon_on_cancel`` are as for :func:`~adapt.run_sync`.
    """

    __slots__ = ("__weakref__", "_core", "_methods")

    def __init__(
        self,
        obj: T,
        *,
        pin: bool = False,
        limiter: CapacityLimiter | None = None,
        abandon_on_cancel: bool = False,
    ) -> None:
        _check_options(pin, limiter, abandon_on_cancel)
        if isinstance(obj, AsyncObject):
            raise TypeError("the object is an async facade already")
        pinned = Pinned(_type_name(obj)) if pin else None
        self._bind(obj, pinned, limiter, abandon_on_cancel)

    def _bind(
        self, obj: T, pinned: Pinned | None, limiter: CapacityLimiter | None, abandon: bool
    ) -> None:
        self._core = _Core(obj, pinned, limiter, abandon)
        self._methods: dict[str, Callable[..., Coroutine[Any, Any, Any]]] = {}
        if pinned is not None:
            weakref.finalize(self, pinned.stop)

    @classmethod
    def _wrap(
        cls, obj: T2, pinned: Pinned | None, limiter: CapacityLimiter | None, abandon: bool
    ) -> AsyncObject[T2]:
        self = cast("AsyncObject[T2]", object.__new__(AsyncObject))
        self._bind(obj, pinned, limiter, abandon)
        return self

    def __getattr__(self, name: str) -> Callable[..., Coroutine[Any, Any, Any]]:
        if name.startswith("_"):
            raise AttributeError(
                f"{type(self).__name__!r} object has no attribute {name!r} "
                "(private names are not forwarded)"
            )
        method = self._methods.get(name)
        if method is None:
            method = self._methods[name] = _make_method(self._core, name)
        return method

    def __dir__(self) -> list[str]:
        names = {n for n in dir(self._core.obj) if not n.startswith("_")}
        return sorted(names | set(super().__dir__()))

    def __repr__(self) -> str:
        pin = " pinned" if self._core.pinned is not None else ""
        return f"<AsyncObject{pin} of {self._core.obj!r}>"

    def get_ref(self) -> T:
        """The wrapped sync object, unchanged (use it only from its thread)."""
        return self._core.obj  # type: ignore[return-value]

    @property
    def pinned(self) -> bool:
        """True when every call runs in one dedicated thread."""
        return self._core.pinned is not None

    async def run_with(
        self, op: Callable[Concatenate[T, P2], R2], *args: P2.args, **kwargs: P2.kwargs
    ) -> R2:
        """Run ``op(obj, *args, **kwargs)`` where the object's calls run.

        For several steps in one hand-off, or in the pinned thread::

            rows = conn.execute(sql).fetchall()                             # sync
            rows = await db.run_with(lambda c: c.execute(sql).fetchall())   # async
        """
        core = self._core
        return await core.call(op, (core.obj, *args), kwargs)

    async def aclose(self) -> None:
        """Call the object's ``close()`` (if any) in its thread, then end the
        dedicated thread.  Idempotent; later calls raise ClosedResourceError."""
        core = self._core
        if core.closed:
            await current_backend().checkpoint()
            return
        close = getattr(core.obj, "close", None)
        try:
            if callable(close):
                await core.call(close, (), {})
        finally:
            core.closed = True
            if core.pinned is not None:
                core.pinned.stop()


class AsyncClass(Generic[T]):
    """``asyncify(cls)``: awaiting a call constructs the instance in a thread
    and returns its :class:`AsyncObject`::

        conn = sqlite3.Connection(path)                                 # sync
        Connection = asyncify(sqlite3.Connection, pin=True)
        db = await Connection(path)                                     # async
    """

    __slots__ = ("__weakref__", "abandon", "cls", "limiter", "pin")

    def __init__(
        self, cls: type[T], pin: bool, limiter: CapacityLimiter | None, abandon: bool
    ) -> None:
        self.cls = cls
        self.pin = pin
        self.limiter = limiter
        self.abandon = abandon

    @property
    def __name__(self) -> str:
        return self.cls.__name__

    @property
    def __doc__(self) -> str | None:  # type: ignore[override]
        return self.cls.__doc__

    def __repr__(self) -> str:
        return f"<AsyncClass of {self.cls.__qualname__}{' pinned' if self.pin else ''}>"

    async def __call__(self, *args: Any, **kwargs: Any) -> AsyncObject[T]:
        """Construct the object in a worker (its dedicated thread if pinned)."""
        if not self.pin:
            obj = await offload(self.cls, args, kwargs, self.limiter, self.abandon)
            return AsyncObject._wrap(obj, None, self.limiter, self.abandon)  # pyright: ignore[reportPrivateUsage]
        pinned = Pinned(self.cls.__qualname__)
        try:
            obj = await offload_pinned(pinned, self.cls, args, kwargs, self.abandon)
        except BaseException:
            pinned.stop()
            raise
        return AsyncObject._wrap(obj, pinned, None, self.abandon)  # pyright: ignore[reportPrivateUsage]


# -- the decorator ------------------------------------------------------------

#: values that have methods but are plainly not what asyncify() is for
_NOT_OBJECTS: tuple[type, ...] = (str, bytes, bytearray, int, float, complex, tuple, list, dict)


def _check_options(pin: object, limiter: object, abandon: object) -> None:
    if not isinstance(pin, bool):
        raise TypeError(f"pin must be a bool, not {type(pin).__name__}")
    if limiter is not None and not isinstance(limiter, CapacityLimiter):
        raise TypeError(f"limiter must be a CapacityLimiter or None, not {type(limiter).__name__}")
    if not isinstance(abandon, bool):
        raise TypeError(f"abandon_on_cancel must be a bool, not {type(abandon).__name__}")


class _Decorator(Protocol):
    @overload
    def __call__(self, target: type[T], /) -> AsyncClass[T]: ...
    @overload
    def __call__(self, target: Callable[P, R], /) -> Callable[P, Coroutine[Any, Any, R]]: ...


@overload
def asyncify(  # type: ignore[overload-overlap]
    target: type[T],
    /,
    *,
    pin: bool = False,
    limiter: CapacityLimiter | None = None,
    abandon_on_cancel: bool = False,
) -> AsyncClass[T]: ...
@overload
def asyncify(  # type: ignore[overload-overlap]
    target: Callable[P, R],
    /,
    *,
    limiter: CapacityLimiter | None = None,
    abandon_on_cancel: bool = False,
) -> Callable[P, Coroutine[Any, Any, R]]: ...
@overload
def asyncify(
    target: None = None,
    /,
    *,
    pin: bool = False,
    limiter: CapacityLimiter | None = None,
    abandon_on_cancel: bool = False,
) -> _Decorator: ...
@overload
def asyncify(
    target: T,
    /,
    *,
    pin: bool = False,
    limiter: CapacityLimiter | None = None,
    abandon_on_cancel: bool = False,
) -> AsyncObject[T]: ...
def asyncify(
    target: Any = None,
    /,
    *,
    pin: bool = False,
    limiter: CapacityLimiter | None = None,
    abandon_on_cancel: bool = False,
) -> Any:
    """Make a sync function, class or object async by running it in threads.

    A function (or method, classmethod, staticmethod) becomes a coroutine
    function with the same name, docstring and signature that runs the
    original in a worker thread::

        @asyncify
        def checksum(path): ...
        digest = checksum("f.bin")                                      # sync
        digest = await checksum("f.bin")                                # async

    A class becomes an :class:`AsyncClass`: ``await Cls(...)`` builds the
    instance in a worker and returns its :class:`AsyncObject`.  Any other
    object becomes an :class:`AsyncObject` whose public methods are async.
    ``pin=True`` (classes and objects) runs all calls of the object in one
    dedicated thread.  ``limiter`` and ``abandon_on_cancel`` are as for
    :func:`~adapt.run_sync`.  With options only, returns a decorator:
    ``@asyncify(limiter=db_slots)``.
    """
    _check_options(pin, limiter, abandon_on_cancel)
    if target is None:
        return functools.partial(
            asyncify, pin=pin, limiter=limiter, abandon_on_cancel=abandon_on_cancel
        )
    if isinstance(target, type):
        cls: type[Any] = target
        return AsyncClass(cls, pin, limiter, abandon_on_cancel)
    if _is_function(target):
        if pin:
            raise TypeError(
                "pin=True applies to classes and objects (a dedicated thread per object), "
                "not to functions"
            )
        return _asyncify_function(target, limiter, abandon_on_cancel)
    if isinstance(target, _NOT_OBJECTS):
        raise TypeError(
            f"asyncify() takes a function, a class or an object with methods, "
            f"not {type(target).__name__}"
        )
    return AsyncObject(target, pin=pin, limiter=limiter, abandon_on_cancel=abandon_on_cancel)
