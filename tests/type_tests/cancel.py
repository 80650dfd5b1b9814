"""Type tests: on_cancel."""

from __future__ import annotations

from typing import assert_type

from adapt import on_cancel


async def cleanup() -> None:
    pass


async def cleanup_returning() -> int:
    return 1


def sync_cleanup() -> None:
    pass


async def use() -> None:
    guard = on_cancel(cleanup, timeout=2)
    assert_type(guard, on_cancel)
    async with guard as entered:
        assert_type(entered, None)
    async with on_cancel(cleanup_returning, timeout=0.5):
        pass
    on_cancel(cleanup())  # type: ignore[arg-type]  # pyright: ignore[reportArgumentType]
    on_cancel(sync_cleanup)  # type: ignore[arg-type]  # pyright: ignore[reportArgumentType]
    on_cancel(cleanup, 5)  # type: ignore[call-arg]  # pyright: ignore[reportCallIssue]
