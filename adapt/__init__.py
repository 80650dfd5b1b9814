"""adapt: use synchronous libraries from async code, without rewriting them.

::

    from adapt import Async

    data = await Async(sock).recv(1024)
"""

from __future__ import annotations

from ._bridges._channel import ChannelFull as ChannelFull
from ._bridges._channel import Overflow as Overflow
from ._bridges._channel import Receiver as Receiver
from ._bridges._channel import Sender as Sender
from ._bridges._channel import channel as channel
from ._bridges._oneshot import Callback as Callback
from ._bridges._oneshot import CallbackDropped as CallbackDropped
from ._bridges._oneshot import Result as Result
from ._bridges._oneshot import deferred as deferred
from ._bridges._oneshot import oneshot as oneshot
from ._bridges._portal import Portal as Portal
from ._cancel import on_cancel as on_cancel
from ._core._async import Async as Async
from ._errors import ClosedResourceError as ClosedResourceError
from ._errors import WantRead as WantRead
from ._errors import WantWrite as WantWrite
from ._errors import WouldBlock as WouldBlock
from ._monitor import Monitor as Monitor
from ._monitor import StackEntry as StackEntry
from ._monitor import Stall as Stall
from ._monitor import StallReport as StallReport
from ._monitor import StallSite as StallSite
from ._monitor import Suggestion as Suggestion
from ._monitor import monitor as monitor
from ._offload._asyncify import AsyncClass as AsyncClass
from ._offload._asyncify import AsyncObject as AsyncObject
from ._offload._asyncify import asyncify as asyncify
from ._offload._iterate import ThreadIterator as ThreadIterator
from ._offload._iterate import iterate as iterate
from ._offload._limiter import CapacityLimiter as CapacityLimiter
from ._offload._reader import Reader as Reader
from ._offload._reader import reader as reader
from ._offload._threads import run_sync as run_sync
from ._offload._writer import Writer as Writer
from ._offload._writer import writer as writer
from ._shims import AsyncConnection as AsyncConnection
from ._shims import AsyncFD as AsyncFD
from ._shims import AsyncFileIO as AsyncFileIO
from ._shims import AsyncSocket as AsyncSocket
from ._shims import AsyncSSLSocket as AsyncSSLSocket
from ._shims import Shim as Shim
from ._shims import reads as reads
from ._shims import writes as writes
from ._streams._buffered import BufferedStream as BufferedStream
from ._streams._buffered import IncompleteReadError as IncompleteReadError
from ._streams._buffered import LimitOverrunError as LimitOverrunError

__version__ = "0.1.0"

__all__ = [
    "Async",
    "AsyncConnection",
    "AsyncFD",
    "AsyncFileIO",
    "AsyncSSLSocket",
    "AsyncSocket",
    "ClosedResourceError",
    "WantRead",
    "WantWrite",
    "WouldBlock",
    "on_cancel",
    "Shim",
    "reads",
    "writes",
    # buffered streams over a wrapper
    "BufferedStream",
    "IncompleteReadError",
    "LimitOverrunError",
    # callback bridges
    "Callback",
    "CallbackDropped",
    "ChannelFull",
    "Overflow",
    "Portal",
    "Receiver",
    "Result",
    "Sender",
    "channel",
    "deferred",
    "oneshot",
    # thread offload
    "AsyncClass",
    "AsyncObject",
    "CapacityLimiter",
    "Reader",
    "ThreadIterator",
    "Writer",
    "asyncify",
    "iterate",
    "reader",
    "run_sync",
    "writer",
    # finding what blocks the loop
    "Monitor",
    "StackEntry",
    "Stall",
    "StallReport",
    "StallSite",
    "Suggestion",
    "monitor",
]
