"""``AsyncResource``: the ``async with`` protocol, written once."""

from __future__ import annotations

from types import TracebackType
from typing import Self

__all__ = ["AsyncResource"]


class AsyncResource:
    """Mixin for objects closed by ``await obj.aclose()``: ``async with obj``
    returns ``obj`` and closes it on the way out, whatever happened inside.

    ::

        async with Async(sock) as a:     # a is the wrapper itself
            ...                          # a.aclose() runs on exit
    """

    __slots__ = ()

    async def aclose(self) -> None:
        raise NotImplementedError

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()
