"""Loop-specific pieces of :func:`adapt.on_cancel`: a deadline, and telling
the loop's cancellation apart from other exceptions.

Kept out of the :class:`~adapt._backends.Backend` protocol because only the
rare cancellation path needs them; like the backends, they import asyncio or
trio only when that library is the one running.
"""

from __future__ import annotations

import sys
from collections.abc import Awaitable, Callable
from typing import cast

__all__ = ["is_cancellation", "within"]


def is_cancellation(exc: BaseException) -> bool:
    """Whether ``exc`` is the running loop's cancellation (asyncio's
    ``CancelledError``, trio's ``Cancelled``), or a group of nothing else."""
    if isinstance(exc, BaseExceptionGroup):
        group = cast("BaseExceptionGroup[BaseException]", exc)
        return all(is_cancellation(e) for e in group.exceptions)
    asyncio = sys.modules.get("asyncio")
    if asyncio is not None and isinstance(exc, asyncio.CancelledError):
        return True
    trio = sys.modules.get("trio")
    return trio is not None and isinstance(exc, trio.Cancelled)


async def within(backend: str, seconds: float, fn: Callable[[], Awaitable[object]]) -> None:
    """``await fn()``, cancelled after ``seconds``; then raise ``TimeoutError``."""
    if backend == "trio":
        import trio

        with trio.move_on_after(seconds) as scope:
            await fn()
        if scope.cancelled_caught:
            raise TimeoutError(f"did not finish within {seconds} s")
    else:
        import asyncio

        deadline = asyncio.timeout(seconds)
        try:
            async with deadline:
                await fn()
        except TimeoutError:
            if not deadline.expired():
                raise  # fn's own
            raise TimeoutError(f"did not finish within {seconds} s") from None
