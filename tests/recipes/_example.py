"""Run a recipe's docstring ``Example::`` on the test's own loop.

The example is a script that ends with ``asyncio.run(main())``; the tests
execute everything before that line and await ``main()`` themselves, so the
same example runs on asyncio, uvloop and trio.
"""

from __future__ import annotations

import textwrap
from collections.abc import Awaitable, Callable
from types import ModuleType
from typing import Any, cast

RUN_LINE = "asyncio.run(main())"


def example_source(module: ModuleType) -> str:
    doc = module.__doc__ or ""
    _, found, block = doc.partition("Example::\n")
    assert found, f"{module.__name__} has no Example:: section"
    lines = []
    for line in block.splitlines():
        if line and not line.startswith("    "):
            break  # the end of the indented block
        lines.append(line)
    source = textwrap.dedent("\n".join(lines)).strip()
    assert source.endswith(RUN_LINE), f"the example must end with {RUN_LINE}"
    return source


def example_main(module: ModuleType, **given: Any) -> Callable[[], Awaitable[Any]]:
    """The example's ``main``, defined but not run; ``given`` are the names
    the example says its surroundings provide (a server's port...)."""
    source = example_source(module).removesuffix(RUN_LINE)
    namespace: dict[str, Any] = {"__name__": f"{module.__name__}_example", **given}
    exec(compile(source, f"<{module.__name__} example>", "exec"), namespace)
    return cast(Callable[[], Awaitable[Any]], namespace["main"])
