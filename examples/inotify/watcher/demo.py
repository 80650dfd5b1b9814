"""The demo: changes made to a temporary directory while the watcher watches it.

Each step says on stderr what it does; the watcher's report of it follows
on stdout after one debounce window.
"""

from __future__ import annotations

import os
import sys

import anyio

STEPS = 7


async def make_changes(root: str, outside: str, pause: float) -> None:
    """Change ``root`` step by step; ``outside`` is a directory beside it."""

    def step(text: str) -> None:
        print(f"demo: {text}", file=sys.stderr, flush=True)

    def path(*parts: str) -> str:
        return os.path.join(root, *parts)

    step("write notes.txt in 1,000 small writes")
    with open(path("notes.txt"), "w") as f:
        for i in range(1000):
            f.write(f"{i}\n")
            f.flush()
    await anyio.sleep(pause)

    step("append to notes.txt 1,000 times")
    with open(path("notes.txt"), "a") as f:
        for _ in range(1000):
            f.write(".")
            f.flush()
    await anyio.sleep(pause)

    step("mkdir -p src/pkg/sub docs, and create src/pkg/sub/mod.py at once")
    os.makedirs(path("src", "pkg", "sub"))
    os.mkdir(path("docs"))
    with open(path("src", "pkg", "sub", "mod.py"), "w") as f:
        f.write("x = 1\n")
    await anyio.sleep(pause)

    step("rename src/pkg/sub/mod.py to docs/mod.py, and directory src/pkg to lib")
    os.rename(path("src", "pkg", "sub", "mod.py"), path("docs", "mod.py"))
    os.rename(path("src", "pkg"), path("lib"))
    await anyio.sleep(pause)

    step("create lib/sub/new.py: the renamed directory is still watched")
    with open(path("lib", "sub", "new.py"), "w") as f:
        f.write("y = 2\n")
    await anyio.sleep(pause)

    step("move notes.txt out of the tree, and a file from outside in")
    os.rename(path("notes.txt"), os.path.join(outside, "notes.txt"))
    with open(os.path.join(outside, "incoming.txt"), "w") as f:
        f.write("hello\n")
    os.rename(os.path.join(outside, "incoming.txt"), path("incoming.txt"))
    await anyio.sleep(pause)

    step("delete docs/mod.py and the directory src")
    os.remove(path("docs", "mod.py"))
    os.rmdir(path("src"))
    await anyio.sleep(pause)
