"""Which adapt tool replaces a blocking call: the table, as data.

Three tables, consulted in this order:

* :data:`MODULES`: the program called into a library (Python frames of that
  library are on the stack).  Keyed by module name prefix; the library the
  program called directly (the outermost library frame) decides, and one
  missing from the table gets ``run_sync`` around the program's call.
* :data:`CALLS`: the loop thread sits in a C function the program called
  directly, known by its ``module.qualname``.
* :data:`TYPES`: a C method called on an object, known by a class in the
  object's MRO; files and sockets are then told apart by what their fd is
  (:data:`BY_FD_KIND`).

A value is a *tool*: ``"Async"``, ``"reader"``, ``"writer"``, ``"pin"``,
``"sleep"``, ``"run_sync"``, ``"by_fd"`` (decide by the fd) or
``"recipe:NAME"`` (the recipe ``adapt.recipes.NAME``).  To teach the doctor a
library, add a line.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["BY_FD_KIND", "CALLS", "MODULES", "READS", "TYPES", "WRITES", "Suggestion", "suggest"]

MODULES: dict[str, str] = {
    # libraries with a recipe in adapt.recipes
    "ssl": "recipe:tls",
    "subprocess": "recipe:subprocess",
    "pty": "recipe:pty",
    "ptyprocess": "recipe:pty",
    "pexpect": "recipe:pty",
    "serial": "recipe:serial",
    "inotify_simple": "recipe:inotify",
    "linuxfd": "recipe:linuxfd",
    "multiprocessing": "recipe:multiprocessing",
    "psycopg2": "recipe:psycopg2",
    "paho.mqtt": "recipe:paho_mqtt",
    "zmq": "recipe:zmq",
    "paramiko": "recipe:paramiko",
    "redis": "recipe:redis",
    "getpass": "recipe:console",
    # thread-affine
    "sqlite3": "pin",
    # plain sockets behind a file interface (sock.makefile())
    "socket": "Async",
    "selectors": "Async",
}

#: library frames that only pass a call on (``with`` blocks, decorators)
PASS_THROUGH = frozenset({"contextlib", "functools", "abc", "typing"})

CALLS: dict[str, str] = {
    "time.sleep": "sleep",
    "builtins.input": "recipe:console",
    "select.select": "Async",
    "select.poll.poll": "Async",
    "select.epoll.poll": "Async",
    "os.waitpid": "recipe:subprocess",
    "os.wait": "recipe:subprocess",
    "os.read": "by_fd",
    "os.write": "by_fd",
    "os.readv": "by_fd",
    "os.writev": "by_fd",
}

TYPES: dict[str, str] = {
    "ssl.SSLSocket": "recipe:tls",
    "ssl.SSLObject": "recipe:tls",
    "socket.socket": "Async",
    "_socket.socket": "Async",
    "sqlite3.Connection": "pin",
    "sqlite3.Cursor": "pin",
    "sqlite3.Blob": "pin",
    "_io.FileIO": "by_fd",
    "_io.BufferedReader": "by_fd",
    "_io.BufferedWriter": "by_fd",
    "_io.BufferedRandom": "by_fd",
    "_io.TextIOWrapper": "by_fd",
    "multiprocessing.connection.Connection": "recipe:multiprocessing",
}

#: for ``"by_fd"``: what the fd is -> tool; "regular" means reader()/writer()
BY_FD_KIND: dict[str, str] = {
    "regular": "file",
    "pipe": "Async",
    "socket": "Async",
    "chardev": "Async",
    "pty": "recipe:pty",
    "tty": "recipe:serial",
    "console": "recipe:console",
}

READS = frozenset(
    [
        "read",
        "read1",
        "readinto",
        "readinto1",
        "readline",
        "readlines",
        "readall",
        "recv",
        "recv_into",
        "recvfrom",
        "recvfrom_into",
        "recvmsg",
        "accept",
        "readv",
    ]
)
WRITES = frozenset(
    ["write", "writelines", "send", "sendall", "sendto", "sendmsg", "flush", "writev"]
)


@dataclass(frozen=True, slots=True)
class Suggestion:
    """What to use instead of a blocking call, from the doctor's table.

    ``tool`` is one of ``"Async"``, ``"reader"``, ``"writer"``,
    ``"asyncify(pin=True)"``, ``"sleep"``, ``"recipe"``, ``"run_sync"``,
    ``"gc"`` and ``"none"`` (the loop was stalled outside the program);
    ``recipe`` names the recipe (``adapt.recipes.<recipe>``) when ``tool`` is
    ``"recipe"``; ``text`` says it in a sentence with the async line to write.
    """

    tool: str
    text: str
    recipe: str | None = None


def _sleep(loop: str) -> str:
    return "trio.sleep" if loop == "trio" else "asyncio.sleep"


def _lookup_module(module: str) -> str | None:
    parts = module.split(".")
    for n in range(len(parts), 0, -1):
        tool = MODULES.get(".".join(parts[:n]))
        if tool is not None:
            return tool
    return None


def _tool_for(
    library_modules: tuple[str, ...],
    function: str,
    receiver: tuple[str, ...],
    method: str,
    fd_kind: str,
) -> str:
    # the library the program called decides (the outermost library frame):
    # requests waiting in socket.recv_into is fixed around requests.get
    for module in reversed(library_modules):
        if module not in PASS_THROUGH:
            return _lookup_module(module) or "run_sync"
    tool = CALLS.get(function)
    if tool is None:
        tool = next((TYPES[name] for name in receiver if name in TYPES), None)
    if tool is None:
        return "run_sync"
    if tool == "by_fd":
        tool = BY_FD_KIND.get(fd_kind, "run_sync")
    if tool == "file":
        if method in READS:
            return "reader"
        if method in WRITES:
            return "writer"
        return "run_sync"
    return tool


def suggest(
    *,
    call: str,
    library_modules: tuple[str, ...],
    function: str,
    receiver: tuple[str, ...],
    fd_kind: str,
    loop: str,
) -> Suggestion:
    """The suggestion for a stall at a call site.

    ``call``: the text of the call the program's own line makes
    (``"sock.recv"``, ``""`` if none); ``library_modules``: modules of the
    library frames below that line (innermost first); ``function``,
    ``receiver`` and ``fd_kind``: the innermost C call, when the program
    made it directly (see :class:`adapt._monitor._frames.Callee`).
    """
    obj, _, method = call.rpartition(".")
    tool = _tool_for(library_modules, function, receiver, method, fd_kind)
    shown = f"`{call}(...)`" if call else "this code"
    if tool == "sleep":
        return Suggestion(
            "sleep", f"{shown} sleeps on the loop: use `await {_sleep(loop)}(...)` instead."
        )
    if tool == "Async":
        target = obj or "the_fd"
        line = f"`await Async({target}).{method or 'read'}(...)`"
        if function == "select.select" or method in ("select", "poll"):
            line = "`await Async(fd).readable()` / `.writable()`"
        return Suggestion(
            "Async",
            f"{shown} waits for I/O on the loop: wait for readiness instead, with the "
            f"adapt.Async shim: {line}.",
        )
    if tool in ("reader", "writer"):
        target = obj or "f"
        if tool == "reader":
            line = f"`r = adapt.reader({target})`, then `await r.read(...)`"
        else:
            line = f"`w = adapt.writer({target})`, then `await w.write(...)`"
        return Suggestion(
            tool,
            f"{shown} does regular-file I/O on the loop (regular files never poll as "
            f"ready-or-not): hand the file to a worker thread with {line}.",
        )
    if tool == "pin":
        return Suggestion(
            "asyncify(pin=True)",
            f"{shown} runs sqlite3 on the loop, and sqlite3 objects stay in the thread "
            "that made them: make the connection in its own thread with "
            "`Connection = adapt.asyncify(sqlite3.Connection, pin=True)`, "
            "`db = await Connection(path)`, then `await db.execute(...)` "
            "(or `adapt.AsyncObject(obj, pin=True)` for another thread-affine object).",
        )
    if tool.startswith("recipe:"):
        name = tool.partition(":")[2]
        return Suggestion(
            "recipe",
            f"{shown} blocks in a library adapt has a recipe for: use adapt.recipes.{name} "
            f"(`from adapt.recipes import {name}`).",
            recipe=name,
        )
    if call:
        text = (
            f"{shown} blocks the loop: run it in a worker thread, "
            f"`await adapt.run_sync({call}, ...)` (or make it async with `@adapt.asyncify`)."
        )
    else:
        text = (
            "CPU-bound code runs on the loop: move it to a worker thread with "
            "`await adapt.run_sync(fn, ...)` (or a process pool if it holds the GIL long)."
        )
    return Suggestion("run_sync", text)


def gc_suggestion(generation: int) -> Suggestion:
    """The suggestion for a pause that garbage collection caused."""
    return Suggestion(
        "gc",
        f"garbage collection (generation {generation}) paused the loop: create fewer "
        "reference cycles, call `gc.freeze()` after start-up, or raise `gc.set_threshold`.",
    )


def idle_suggestion() -> Suggestion:
    """The suggestion for a stall that caught the loop in its own code."""
    return Suggestion(
        "none",
        "the loop thread was in the event loop's own code, not the program's: the "
        "machine did not run it (overloaded?) or another thread held the GIL.",
    )


def unknown_suggestion() -> Suggestion:
    """The suggestion for a stall no sample caught in Python code."""
    return Suggestion(
        "run_sync",
        "no sample caught the loop thread in Python code during this stall (C code "
        "holding the GIL?): run the blocking part with `await adapt.run_sync(fn, ...)`.",
    )
