"""Generate the built-in shims and their docs listing from ``adapt/_shims/_spec.py``.

::

    python -m adapt._shims._generate            # rewrite adapt/_shims/_gen.py and docs/shims.rst
    python -m adapt._shims._generate --check    # exit 1 if either is stale (CI)

Theory of operation
-------------------
Shims must carry the sync method's real signature, for ``inspect``,
``help()``, IDEs and both type checkers.  Descriptors built at run time give
type checkers the signature (through ``ParamSpec``) but not ``inspect`` (C
methods have none), and their ``*args`` forwarding costs a little on every
call.  So the built-in shims are plain source: one method per sync method,
parameters copied from the stub in the catalog, forwarding them by position
to ``Async._io``: a one-argument call as the bound method and its argument
(``self._io(self._obj.recv, READ, n)``: no closure to allocate, or to keep
while the task is parked), any other as a lambda -- what a hand-written
``read_with(lambda s: s.recv(n))`` does, minus one call.  Types marked
``direct`` in the catalog pass ``True`` for predicted waits (``_predict``).

Stale generated code is the risk of this design, so the output is committed
and ``--check`` compares whole files: the module, and the listing section of
``docs/shims.rst`` (between two marker comments; the prose around it is
written by hand).  The output is already in ``ruff format`` style.
"""

from __future__ import annotations

import argparse
import importlib
import inspect
import re
import sys
import textwrap
import types
from pathlib import Path

from . import _base as _shims_base
from ._spec import CATALOG, MethodRule, TypeSpec

ROOT = Path(__file__).resolve().parents[2]
MODULE = ROOT / "adapt" / "_shims" / "_gen.py"
DOCS = ROOT / "docs" / "shims.rst"
BEGIN = ".. BEGIN GENERATED SHIM CATALOG (python -m adapt._shims._generate; do not edit)"
END = ".. END GENERATED SHIM CATALOG"
WIDTH = 100

_WAITS = {"read": "readable", "write": "writable"}
_DIRECTIONS = {"read": "READ", "write": "WRITE"}


def _params(fn: object) -> tuple[list[str], list[str], str]:
    """``(parameter sources, call arguments, return annotation)`` of a stub."""
    sig = inspect.signature(fn)  # type: ignore[arg-type]
    params = list(sig.parameters.values())[1:]  # drop self
    out: list[str] = ["self"]
    args: list[str] = []
    kind = inspect.Parameter
    slash = any(p.kind is kind.POSITIONAL_ONLY for p in params)
    star = False
    for i, p in enumerate(params):
        if p.kind in (kind.VAR_POSITIONAL, kind.VAR_KEYWORD):
            raise ValueError(f"{fn}: *args/**kwargs are not supported in stubs")
        if p.kind is kind.KEYWORD_ONLY and not star:
            out.append("*")
            star = True
        text = p.name if p.annotation is p.empty else f"{p.name}: {p.annotation}"
        if p.default is not p.empty:
            text += f" = {p.default!r}"
        out.append(text)
        args.append(f"{p.name}={p.name}" if p.kind is kind.KEYWORD_ONLY else p.name)
        last_positional = i + 1 == len(params) or params[i + 1].kind is not kind.POSITIONAL_ONLY
        if slash and p.kind is kind.POSITIONAL_ONLY and last_positional:
            out.append("/")
    return [_plain(text) for text in out], args, _plain(str(sig.return_annotation))


def _plain(annotation: str) -> str:
    """Stub protocols need variance-marked type variables; the shims don't."""
    return re.sub(r"\b(_[A-Za-z]+)_(?:co|contra)\b", r"\1", annotation)


def _call(
    head: str,
    items: list[str],
    tail: str,
    indent: int,
    brackets: tuple[str, str] = ("(", ")"),
    hug: bool = True,
) -> list[str]:
    """``head(items)tail`` in ruff-format style: one line, hugged, or exploded."""
    pad = " " * indent
    left, right = brackets
    one = f"{pad}{head}{left}{', '.join(items)}{right}{tail}"
    if len(one) <= WIDTH:
        return [one]
    inner = f"{pad}    {', '.join(items)}"
    if hug and len(inner) <= WIDTH:
        return [f"{pad}{head}{left}", inner, f"{pad}{right}{tail}"]
    exploded = [f"{pad}    {item}," for item in items]
    return [f"{pad}{head}{left}", *exploded, f"{pad}{right}{tail}"]


def _docstring(lines: list[str], indent: int) -> list[str]:
    pad = " " * indent
    if len(lines) == 1 and len(f'{pad}"""{lines[0]}"""') <= WIDTH:
        return [f'{pad}"""{lines[0]}"""']
    out = [f'{pad}"""{lines[0]}']
    out += [f"{pad}{line}" if line else "" for line in lines[1:]]
    out.append(f'{pad}"""')
    return out


def _wrap(text: str, indent: int) -> list[str]:
    return textwrap.wrap(text, WIDTH - indent, break_on_hyphens=False) or [""]


def _method(spec: TypeSpec, name: str, rule: MethodRule) -> list[str]:
    params, args, ret = _params(getattr(spec.stub, name))
    var = spec.var
    if var in args:
        raise ValueError(f"{spec.name}.{name}: parameter clashes with the variable {var!r}")
    sync = rule.call or f"{var}.{name}({', '.join(args)})"
    doc = [f"Awaitable ``{sync}``.", ""]
    text = f"Waits until {_WAITS[rule.direction]} while the call would block"
    if rule.none_blocks:
        text += " (returns ``None``)"
    if rule.ready:
        text += f"; runs the call only once ``{rule.ready}`` is true"
    doc += _wrap(text + ".", 8)
    if rule.note:
        doc += _wrap(rule.note[0].upper() + rule.note[1:] + ".", 8)
    lines = ["", *_call(f"def {name}", params, f" -> Coroutine[Any, Any, {ret}]:", 4)]
    lines += _docstring(doc, 8)
    defaults = _optional(getattr(spec.stub, name))
    if defaults and rule.call is None and _in_c(spec, name):
        # Passing optional arguments costs a C method some parsing: when they
        # all have their default value, leave them out, as callers do.
        test = " and ".join(f"{p} is None" if d is None else f"{p} == {d!r}" for p, d in defaults)
        short = f"{var}.{name}({', '.join(args[: len(args) - len(defaults)])})"
        short_args = args[: len(args) - len(defaults)]
        lines += [f"        if {test}:"]
        io_args = _io_args(spec, name, rule, short, short_args, spec.direct)
        lines += _call("return self._io", io_args, "", 12)
    # with flags (MSG_OOB...), readiness may not mean "data": no predicted waits
    io_args = _io_args(spec, name, rule, sync, args, spec.direct and not defaults)
    lines += _call("return self._io", io_args, "", 8)
    return lines


def _io_args(
    spec: TypeSpec, name: str, rule: MethodRule, call: str, args: list[str], direct: bool
) -> list[str]:
    """The arguments of ``Async._io``: ``op, direction, arg[, direct]``.

    A plain one-argument call passes the bound method and its argument: no
    closure is allocated per call, or kept alive while the task is parked.
    """
    direction = _DIRECTIONS[rule.direction]
    plain = rule.call is None and not rule.none_blocks and rule.ready is None
    if plain and len(args) == 1 and "=" not in args[0]:
        items = [f"self._obj.{name}", direction, args[0]]
    else:
        items = [f"lambda {spec.var}: {_op(call, rule)}", direction, "self._obj"]
    return [*items, "True"] if direct else items


def _in_c(spec: TypeSpec, name: str) -> bool:
    module, _, qualname = spec.wraps.rpartition(".")
    method = getattr(getattr(importlib.import_module(module), qualname), name)
    return isinstance(method, types.MethodDescriptorType | types.BuiltinFunctionType)


def _op(call: str, rule: MethodRule) -> str:
    if rule.none_blocks:
        call = f"some_or_block({call})"
    if rule.ready:
        call = f"{call} if {rule.ready} else not_yet()"
    return call


def _optional(fn: object) -> list[tuple[str, object]]:
    """The trailing optional positional parameters, if all default to an int or None."""
    kind = inspect.Parameter
    optional = [
        (p.name, p.default)
        for p in inspect.signature(fn).parameters.values()  # type: ignore[arg-type]
        if p.kind in (kind.POSITIONAL_ONLY, kind.POSITIONAL_OR_KEYWORD) and p.default is not p.empty
    ]
    plain = all(d is None or type(d) is int for _, d in optional)
    return optional if plain else []


def _wrapped_type(spec: TypeSpec) -> str:
    module, _, name = spec.wraps.rpartition(".")
    base = name if module == "builtins" else spec.wraps
    return f"{base}[{', '.join(spec.params)}]" if spec.params else base


def _check_custom(spec: TypeSpec, name: str, rule: MethodRule) -> None:
    base = getattr(_shims_base, spec.base)
    impl = getattr(base, name, None)
    if rule.custom is None:
        if impl is not None and name in vars(base):
            raise ValueError(f"{spec.base}.{name} is hand-written but the catalog generates it")
        return
    if impl is None:
        raise ValueError(f"{spec.name}.{name} is marked custom but {spec.base} lacks it")
    stub = inspect.signature(getattr(spec.stub, name)).parameters.values()
    want = [(p.name, p.kind, p.default) for p in stub]
    have = [(p.name, p.kind, p.default) for p in inspect.signature(impl).parameters.values()]
    if want != have:
        raise ValueError(f"{spec.base}.{name} parameters {have} differ from the stub's {want}")


def _class(spec: TypeSpec) -> list[str]:
    base = f"{spec.base}[{', '.join(spec.params)}]" if spec.params else spec.base
    keywords = f'wraps="{spec.wraps}"' + ("" if spec.nonblocking else ", nonblocking=False")
    lines = ["", "", *_call(f"class {spec.name}", [base, keywords], ":", 0)]
    sync, coro = spec.example
    width = max(len(sync), len(coro)) + 4
    doc = [*inspect.cleandoc(spec.stub.__doc__ or "").splitlines(), "", "::", ""]
    doc += [f"    {sync:<{width}}# sync", f"    {coro:<{width}}# async"]
    lines += _docstring(doc, 4)
    lines += ["", "    __slots__ = ()", "", "    if TYPE_CHECKING:", ""]
    nb = "True" if spec.nonblocking else "False"
    new_params = [
        "cls",
        f"obj: {_wrapped_type(spec)}",
        "*",
        f"nonblocking: bool = {nb}",
        "would_block: ExcTypes = ()",
    ]
    lines += _call("def __new__", new_params, " -> Self: ...", 8)
    for name, rule in spec.rules():
        _check_custom(spec, name, rule)
        if rule.custom is None:
            lines += _method(spec, name, rule)
    return lines


def render_module() -> str:
    bases = sorted((spec.base for spec in CATALOG), key=str.lower)
    names = [spec.name for spec in CATALOG]
    body: list[str] = []
    for spec in CATALOG:
        body += _class(spec)
    text = "\n".join(body)
    helpers = ["message_ready", "not_yet", "room_to_send", "some_or_block", "writable_now"]
    helpers = [h for h in helpers if f"{h}(" in text]
    params = sorted({p for spec in CATALOG for p in spec.params})
    modules = sorted({spec.wraps.rpartition(".")[0] for spec in CATALOG} - {"builtins"})
    head = [
        '"""Shims generated from ``_spec.py`` by ``python -m adapt._shims._generate``.',
        "",
        "Do not edit: change the catalog (or ``adapt/_shims/_base.py``) and regenerate.",
        '"""',
        "",
        "from __future__ import annotations",
        "",
    ]
    if "os." in text:
        head.append("import os")
    typing_names = ["TYPE_CHECKING", "Any", "Self", *(["TypeVar"] if params else [])]
    head += [
        "from collections.abc import Coroutine" + (", Iterable" if "Iterable[" in text else ""),
        f"from typing import {', '.join(typing_names)}",
        "",
        "from .._errors import READ, WRITE",
        *_call("from ._base import ", [*bases, *helpers], "", 0, hug=False),
        "",
        "if TYPE_CHECKING:",
        *(f"    import {m}" for m in modules),
        "",
        "    from _typeshed import ReadableBuffer, WriteableBuffer",
        "",
        "    from .._core._async import ExcTypes",
        "",
        *_call("__all__ = ", [f'"{name}"' for name in sorted(names)], "", 0, ("[", "]")),
    ]
    if params:
        head += [""] + [f'{p} = TypeVar("{p}")' for p in params]
    return "\n".join(head + body) + "\n"


def _table_row(cells: list[str]) -> list[str]:
    first, *rest = cells
    return [f"   * - {first}", *(f"     - {cell}" for cell in rest)]


def render_catalog() -> str:
    out = [BEGIN, ""]
    for spec in CATALOG:
        title = f"``{spec.wraps.removeprefix('builtins.')}``: :class:`adapt.{spec.name}`"
        out += [title, "-" * len(title), ""]
        out += inspect.cleandoc(spec.stub.__doc__ or "").splitlines()
        out += ["", f"Would block when the sync call {spec.signal}.", ""]
        out += [".. list-table::", "   :header-rows: 1", "   :widths: 55 10 35", ""]
        out += _table_row(["``await a.…``", "Waits", "Rule"])
        for name, rule in spec.rules():
            params, _, ret = _params(getattr(spec.stub, name))
            if rule.custom:
                impl = getattr(getattr(_shims_base, spec.base), name)
                ret = str(inspect.signature(impl).return_annotation)
                ret = (
                    ret.removeprefix("Coroutine[Any, Any, ").removesuffix("]")
                    if ret.startswith("Coroutine[")
                    else ret
                )
            sig = f"``{name}({', '.join(params[1:])}) -> {ret}``"
            parts = [rule.custom] if rule.custom else [f"``{rule.call}``"] if rule.call else []
            if rule.none_blocks:
                parts.append("``None`` means would block")
            if rule.ready:
                parts.append(f"runs once ``{rule.ready}``")
            if rule.note:
                parts.append(rule.note)
            out += _table_row([sig, _WAITS[rule.direction], "; ".join(parts) or "the sync call"])
        out.append("")
    out.append(END)
    return "\n".join(out)


def render_docs(current: str) -> str:
    """``current`` with the catalog section (between the markers) regenerated."""
    start = current.find(BEGIN)
    stop = current.find(END)
    if start < 0 or stop < start:
        raise ValueError(f"{DOCS} lacks the marker lines {BEGIN!r} ... {END!r}")
    return current[:start] + render_catalog() + current[stop + len(END) :]


def _same(path: Path, text: str) -> bool:
    return path.exists() and path.read_text() == text


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m adapt._shims._generate", description=__doc__)
    parser.add_argument("--check", action="store_true", help="exit 1 if the output is stale")
    options = parser.parse_args(argv)
    docs = DOCS.read_text()
    outputs = {MODULE: render_module(), DOCS: render_docs(docs)}
    stale = [path for path, text in outputs.items() if not _same(path, text)]
    if options.check:
        for path in stale:
            print(f"stale: {path.relative_to(ROOT)} (run: python -m adapt._shims._generate)")
        return 1 if stale else 0
    for path in stale:
        path.write_text(outputs[path])
        print(f"wrote {path.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
