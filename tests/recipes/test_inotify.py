"""The inotify recipe against the kernel's inotify, on every loop."""

from __future__ import annotations

import os
from pathlib import Path

import anyio
import pytest
from adapt.recipes import inotify as recipe
from adapt.recipes.inotify import QueueOverflow, Watcher
from inotify_simple import INotify, flags

from ._example import example_main


async def test_example(backend: str, capsys: pytest.CaptureFixture[str]) -> None:
    await example_main(recipe)()
    assert capsys.readouterr().out.splitlines() == [
        "new.txt ['CREATE']",
        "new.txt ['DELETE']",
    ]


async def test_add_and_remove_watches_while_streaming(backend: str, tmp_path: Path) -> None:
    first, second = tmp_path / "a", tmp_path / "b"
    first.mkdir()
    second.mkdir()
    seen: list[tuple[int, str, list[str]]] = []
    async with Watcher() as watcher:
        wd_first = watcher.add_watch(str(first), flags.CREATE)

        async def consume() -> None:
            async for event in watcher:
                kinds = [f.name for f in flags.from_mask(event.mask)]
                seen.append((event.wd, event.name, kinds))
                if event.name == "last":
                    return

        async with anyio.create_task_group() as tg:
            tg.start_soon(consume)
            await anyio.sleep(0.05)  # the consumer is parked in read()
            (first / "one").touch()
            await anyio.sleep(0.05)
            wd_second = watcher.add_watch(str(second), flags.CREATE)
            (second / "two").touch()
            await anyio.sleep(0.05)
            watcher.rm_watch(wd_first)
            (first / "unseen").touch()  # no longer watched
            (second / "last").touch()
    assert seen == [
        (wd_first, "one", ["CREATE"]),
        (wd_second, "two", ["CREATE"]),
        (wd_first, "", ["IGNORED"]),
        (wd_second, "last", ["CREATE"]),
    ]


async def test_overflow_is_surfaced_and_the_watcher_goes_on(backend: str, tmp_path: Path) -> None:
    limit = int(Path("/proc/sys/fs/inotify/max_queued_events").read_text())
    async with Watcher(INotify()) as watcher:
        watcher.add_watch(str(tmp_path), flags.CREATE)
        for i in range(limit + 10):  # nobody reads: the queue overflows
            os.close(os.open(tmp_path / f"f{i}", os.O_CREAT | os.O_WRONLY))

        async def drain() -> None:
            while True:
                await watcher.read()

        with pytest.raises(QueueOverflow, match="events were lost") as info:
            await drain()
        assert 0 < len(info.value.events) <= limit
        assert all(e.mask & flags.CREATE for e in info.value.events)
        (tmp_path / "after").touch()
        (event,) = await watcher.read()
        assert event.name == "after"


async def test_cancelled_read_loses_no_event(backend: str, tmp_path: Path) -> None:
    async with Watcher() as watcher:
        watcher.add_watch(str(tmp_path), flags.CREATE)
        with anyio.move_on_after(0.05):
            await watcher.read()
        (tmp_path / "x").touch()
        (event,) = await watcher.read()
        assert event.name == "x"
