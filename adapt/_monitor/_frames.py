"""Reading a stalled loop thread's stack: whose code it is, and what it calls.

The watchdog thread holds a frame of the loop thread only while it samples
(:func:`snapshot`, :func:`complete`), and keeps code objects and offsets,
never frames: a kept frame would keep every local of the stalled call alive.  The one thing that
needs the live frame is the type of the object a C call was made on
(``sock.recv(...)``: is ``sock`` a socket, a file, a sqlite3 cursor?), so
:func:`complete` resolves that once per call site, without running any of the
program's code: names are looked up in the frame's namespaces and attributes
with ``inspect.getattr_static``, so no property or ``__getattr__`` runs in
the watchdog thread.  Everything else (source lines, call text) is read
later, when the report is made.
"""

from __future__ import annotations

import ast
import builtins
import dis
import inspect
import linecache
import os
import site
import stat
import sysconfig
import types
from dataclasses import dataclass
from typing import Any, NamedTuple, cast

__all__ = [
    "Callee",
    "Sample",
    "SampledFrame",
    "Snapshot",
    "call_text",
    "complete",
    "is_user_file",
    "snapshot",
]

#: frames kept per sample, innermost first
MAX_DEPTH = 64

_ADAPT_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _library_dirs() -> tuple[str, ...]:
    dirs = {_ADAPT_DIR}
    paths = sysconfig.get_paths()
    for key in ("stdlib", "platstdlib", "purelib", "platlib"):
        if key in paths:
            dirs.add(os.path.realpath(paths[key]))
            dirs.add(paths[key])
    for d in (*site.getsitepackages(), site.getusersitepackages()):
        dirs.add(os.path.realpath(d))
        dirs.add(d)
    return tuple(sorted(d.rstrip(os.sep) + os.sep for d in dirs))


_LIBRARY_DIRS = _library_dirs()
_user_files: dict[str, bool] = {}


def is_user_file(filename: str) -> bool:
    """Is this the program's own code (not the standard library, an installed
    package, adapt itself or frozen/generated code)?"""
    known = _user_files.get(filename)
    if known is None:
        if filename.startswith("<"):
            known = False
        else:
            path = os.path.abspath(filename)
            known = not path.startswith(_LIBRARY_DIRS) and not os.path.realpath(path).startswith(
                _LIBRARY_DIRS
            )
        _user_files[filename] = known
    return known


@dataclass(frozen=True, slots=True)
class Callee:
    """What a C call in a sampled frame was made on, resolved once per site."""

    #: ``module.qualname`` of the function called (``time.sleep``), or ""
    function: str
    #: ``module.qualname`` of each class in the receiver's MRO, or ()
    receiver: tuple[str, ...]
    #: what the receiver's fd is: "regular", "pipe", "socket", "pty", "tty",
    #: "console" (stdin/out/err on a terminal), "chardev" or "" (unknown)
    fd_kind: str


@dataclass(frozen=True, slots=True)
class SampledFrame:
    code: types.CodeType
    lineno: int
    lasti: int
    module: str
    user: bool


@dataclass(frozen=True, slots=True)
class Sample:
    #: innermost first
    frames: tuple[SampledFrame, ...]
    #: the callee of the innermost frame's current call, if it is a call
    callee: Callee | None


# -- the call expression at an instruction -----------------------------------

_CALL_OPS = frozenset(
    op for name, op in dis.opmap.items() if name in ("CALL", "PRECALL", "CALL_FUNCTION_EX")
)
_call_texts: dict[tuple[types.CodeType, int], tuple[str, ast.expr | None]] = {}


_CACHE = dis.opmap.get("CACHE", -1)


def _instruction(code: types.CodeType, lasti: int) -> int:
    """The offset of the instruction at ``lasti``: a caller's frame stops on
    the last inline-cache entry of its CALL, not on the CALL itself."""
    raw = code.co_code
    if not 0 <= lasti < len(raw):
        return -1
    while lasti > 0 and raw[lasti] == _CACHE:
        lasti -= 2
    return lasti


def _segment(code: types.CodeType, lasti: int) -> str:
    positions = list(code.co_positions())
    index = lasti // 2
    if not 0 <= index < len(positions):
        return ""
    start, end, col, end_col = positions[index]
    if start is None or end is None or col is None or end_col is None:
        return ""
    lines = linecache.getlines(code.co_filename)
    if end > len(lines):
        return ""
    chunk = [line.encode() for line in lines[start - 1 : end]]
    if len(chunk) == 1:
        return chunk[0][col:end_col].decode(errors="replace")
    chunk[0] = chunk[0][col:]
    chunk[-1] = chunk[-1][:end_col]
    return b"".join(chunk).decode(errors="replace")


def _call(code: types.CodeType, lasti: int) -> tuple[str, ast.expr | None]:
    """The called expression's text and tree, if ``lasti`` is a call."""
    key = (code, lasti)
    known = _call_texts.get(key)
    if known is None:
        known = ("", None)
        at = _instruction(code, lasti)
        if at >= 0 and code.co_code[at] in _CALL_OPS:
            text = _segment(code, at)
            try:
                tree = ast.parse(text.strip(), mode="eval").body
            except SyntaxError:
                tree = None
            if isinstance(tree, ast.Call):
                known = (ast.unparse(tree.func), tree.func)
        _call_texts[key] = known
    return known


def call_text(code: types.CodeType, lasti: int) -> str:
    """``"sock.recv"`` for a frame stopped in ``sock.recv(n)``, else ``""``."""
    return _call(code, lasti)[0]


# -- resolving the callee without running the program's code -----------------

_MISSING = object()


def _dotted(node: ast.expr) -> list[str] | None:
    names: list[str] = []
    while isinstance(node, ast.Attribute):
        names.append(node.attr)
        node = node.value
    if not isinstance(node, ast.Name):
        return None
    names.append(node.id)
    names.reverse()
    return names


def _lookup(frame: types.FrameType, name: str) -> object:
    # f_locals builds the locals dict of the frame; it does not change them
    for namespace in (frame.f_locals, frame.f_globals):
        if name in namespace:
            return namespace[name]
    return getattr(builtins, name, _MISSING)


def _qualname(obj: object) -> str:
    module = getattr(obj, "__module__", None) or ""
    if not module and isinstance(obj, types.BuiltinFunctionType | types.MethodDescriptorType):
        owner = getattr(obj, "__objclass__", None) or getattr(obj, "__self__", None)
        if isinstance(owner, type):
            module = owner.__module__
        elif isinstance(owner, types.ModuleType):
            module = owner.__name__
    qualname = getattr(obj, "__qualname__", None) or getattr(obj, "__name__", "")
    if not isinstance(module, str) or not isinstance(qualname, str) or not qualname:
        return ""
    return f"{module}.{qualname}" if module else qualname


#: file types whose ``fileno()`` is C code that runs no program code
_FILE_TYPES = frozenset(
    [
        "_io.FileIO",
        "_io.BufferedReader",
        "_io.BufferedWriter",
        "_io.BufferedRandom",
        "_io.TextIOWrapper",
        "socket.socket",
        "_socket.socket",
        "ssl.SSLSocket",
    ]
)


#: the names of terminal devices (``isatty`` needs the fd itself, see _fd_kind)
_TTY_NAMES = ("/dev/pts/", "/dev/tty", "/dev/ptmx", "/dev/console")


def _fd_kind(fd: int, fd_dir: str) -> str:
    """What the sampled thread's ``fd`` is, found through ``fd_dir`` (its
    ``/proc`` fd directory): the watchdog has a table of its own, where the
    number names nothing (see ``private_fd_table``)."""
    path = f"{fd_dir}/{fd}"
    try:
        mode = os.stat(path).st_mode
    except OSError:
        return ""
    if stat.S_ISREG(mode):
        return "regular"
    if stat.S_ISFIFO(mode):
        return "pipe"
    if stat.S_ISSOCK(mode):
        return "socket"
    if stat.S_ISCHR(mode):
        try:
            name = os.readlink(path)
        except OSError:
            name = ""
        if not name.startswith(_TTY_NAMES):
            return "chardev"
        if fd <= 2:
            return "console"  # the program's own terminal
        if name.startswith("/dev/pts/") or name == "/dev/ptmx":
            return "pty"
        return "tty"
    return ""


def _resolve(frame: types.FrameType, func: ast.expr, fd_dir: str) -> Callee:
    names = _dotted(func)
    if not names:
        return Callee("", (), "")
    receiver = _MISSING
    target = _lookup(frame, names[0])
    for attr in names[1:]:
        if target is _MISSING:
            break
        receiver = target
        try:
            target = inspect.getattr_static(target, attr)
        except AttributeError:
            target = _MISSING
    if isinstance(target, staticmethod | classmethod):
        target = cast("staticmethod[..., Any] | classmethod[Any, ..., Any]", target).__func__
    function = "" if target is _MISSING else _qualname(target)
    if receiver is _MISSING or isinstance(receiver, types.ModuleType | type):
        return Callee(function, (), "")
    mro = tuple(_qualname(cls) for cls in type(receiver).__mro__)
    fd_kind = ""
    if any(name in _FILE_TYPES for name in mro):
        try:
            fd = receiver.fileno()  # type: ignore[attr-defined]
        except Exception:
            fd = -1
        if isinstance(fd, int) and fd >= 0:
            fd_kind = _fd_kind(fd, fd_dir)
    return Callee(function, mro, fd_kind)


_callees: dict[tuple[types.CodeType, int], Callee | None] = {}


def _callee(frame: types.FrameType, lasti: int, fd_dir: str) -> Callee | None:
    """What the call at instruction ``lasti`` of ``frame`` calls (``lasti``
    as snapshotted: the frame may have moved on since)."""
    key = (frame.f_code, lasti)
    if key in _callees:
        return _callees[key]
    _, func = _call(*key)
    callee = None if func is None else _resolve(frame, func, fd_dir)
    if callee is not None and callee.function in ("os.read", "os.write"):
        callee = _fd_argument(frame, lasti, callee, fd_dir)
    _callees[key] = callee
    return callee


def _fd_argument(frame: types.FrameType, lasti: int, callee: Callee, fd_dir: str) -> Callee:
    """``os.read(fd, n)``: the kind of file ``fd`` is (a name or a constant)."""
    at = _instruction(frame.f_code, lasti)
    text = _segment(frame.f_code, at) if at >= 0 else ""
    try:
        call = ast.parse(text.strip(), mode="eval").body
    except SyntaxError:
        return callee
    if not isinstance(call, ast.Call) or not call.args:
        return callee
    arg = call.args[0]
    fd: object = _MISSING
    if isinstance(arg, ast.Name):
        fd = _lookup(frame, arg.id)
    elif isinstance(arg, ast.Constant):
        fd = arg.value
    if isinstance(fd, int) and not isinstance(fd, bool) and fd >= 0:
        return Callee(callee.function, callee.receiver, _fd_kind(fd, fd_dir))
    return callee


class Snapshot(NamedTuple):
    """A loop thread's stack as it was, taken without giving the GIL up."""

    #: (code, line, instruction, module name), innermost first
    frames: list[tuple[types.CodeType, int, int, str]]
    innermost: types.FrameType
    #: the sampled thread's ``/proc`` fd directory
    fd_dir: str


def snapshot(frame: types.FrameType, fd_dir: str) -> Snapshot:
    """Record a frame of the loop thread and its callers (innermost first).

    Nothing here can release the GIL (attribute reads and a dict lookup by
    a str key), so the stack is the one the loop thread was stopped in: the
    caller can tell, right after, whether the stall it meant to sample was
    still going on.  What needs system calls or source files (which files
    are the user's, what a call calls) waits for :func:`complete`: while it
    reads them, the loop thread runs on.
    """
    frames: list[tuple[types.CodeType, int, int, str]] = []
    f: types.FrameType | None = frame
    while f is not None and len(frames) < MAX_DEPTH:
        code = f.f_code
        module = f.f_globals.get("__name__", "")
        frames.append(
            (
                code,
                f.f_lineno or code.co_firstlineno,
                f.f_lasti,
                module if isinstance(module, str) else "",
            )
        )
        f = f.f_back
    return Snapshot(frames, frame, fd_dir)


def complete(snap: Snapshot) -> Sample:
    """The :class:`Sample` of a snapshot: whose files, what the innermost
    frame calls (the innermost frame is in a C call, or running; only it can
    be asked what it calls on which object)."""
    frames = tuple(
        SampledFrame(code, lineno, lasti, module, is_user_file(code.co_filename))
        for code, lineno, lasti, module in snap.frames
    )
    return Sample(frames, _callee(snap.innermost, snap.frames[0][2], snap.fd_dir))
