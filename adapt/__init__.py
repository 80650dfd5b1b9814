"""adapt: use synchronous libraries from async code, without rewriting them.

::

    from adapt import Async

    data = await Async(sock).recv(1024)
"""

from __future__ import annotations

from ._async import Async as Async
from ._errors import ClosedResourceError as ClosedResourceError
from ._errors import WantRead as WantRead
from ._errors import WantWrite as WantWrite
from ._errors import WouldBlock as WouldBlock
from ._shims import AsyncFD as AsyncFD
from ._shims import AsyncSocket as AsyncSocket

__version__ = "0.1.0"

__all__ = [
    "Async",
    "AsyncFD",
    "AsyncSocket",
    "ClosedResourceError",
    "WantRead",
    "WantWrite",
    "WouldBlock",
]
