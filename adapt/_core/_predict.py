"""Predicted waits: skipping an attempt that cannot succeed.

Theory of operation
-------------------
``Async._io`` tries the op first and waits only when it would block.  In a
request/response exchange that costs a failing call before every wait: the
reply to a request just sent cannot be there yet, so ``recv`` fails (a
syscall and an exception) before the task waits for the reply.

For ops that only move bytes between the caller and the kernel's buffer --
the built-in shims of a plain ``socket.socket`` or ``io.FileIO``, without
flags -- there is no library buffer that could hold data while the fd is not
readable.  For them, when the previous op on the wrapper went the other way
and the last op in this direction had to wait, the op waits first.  Nothing
changes but the order of two steps: readiness is level-triggered, so data
that is already there is reported by the next poll, and the op still runs
in the awaiting task (cancellation loses nothing).  Every 32nd predicted
wait tries first anyway (a *probe*): if the data was there, the prediction
is dropped until an op has to wait again.  (A probe that fails costs what
prediction saves, so probes are rare; a wrong guess costs one loop
iteration per op until the next probe.)

Where readiness and "the op would return data" part ways, an op must try
first, so these never predict:

* a subclass of those types (its ``recv`` may buffer in user space);
* a socket with ``SO_RCVLOWAT`` above 1 (epoll waits for the low-water mark,
  ``recv`` does not) and a terminal (in raw mode, ``VMIN``), checked when
  wrapped;
* calls with flags (``MSG_OOB`` data is signalled by ``EPOLLPRI``);
* an object closed behind adapt's back (``_io`` checks ``fileno()`` before
  each predicted wait, without a syscall), so the op reports the error
  instead of a wait on a dead fd.

Every op updates the state; only the direct ones act on it.

The state is one small int per wrapper, and both steps are table lookups:

* bit ``1 << direction``: the last op in that direction waited;
* bit 2: the last op was a write;
* bits 3-7: predicted waits since the last probe;
* :data:`NEVER`: the object is not of a direct type; the state never changes.
"""

from __future__ import annotations

import io
import os
import socket
from typing import Any

from .._errors import READ, WRITE

__all__ = ["DONE", "DONE_WAITED", "NEVER", "START", "initial"]

_LAST_WRITE = 4
_COUNT = 8  # one predicted wait
_PROBE_AT = 31  # predicted waits in a row before a probe
#: the state of a wrapper whose object may buffer in user space
NEVER = 256


def initial(obj: Any) -> int:
    """The state of a new wrapper of ``obj`` (one syscall for a direct type)."""
    # exact types only: a subclass's methods may buffer in user space
    try:
        if type(obj) is socket.socket:
            direct = obj.getsockopt(socket.SOL_SOCKET, socket.SO_RCVLOWAT) <= 1
        elif type(obj) is io.FileIO:
            direct = not os.isatty(obj.fileno())
        else:
            direct = False
    except (OSError, ValueError):
        direct = False
    return 0 if direct else NEVER


def _start(state: int, direction: int) -> int:
    """The state once an op in ``direction`` starts: higher means "wait first"."""
    if state == NEVER:
        return state
    predicted = state & (1 << direction) and (state & _LAST_WRITE) >> 2 != direction
    if not predicted:
        return state
    if state // _COUNT >= _PROBE_AT:
        return state % _COUNT  # lower: try first this once
    return state + _COUNT


def _done(state: int, direction: int, waited: bool) -> int:
    """The state once an op in ``direction`` has completed."""
    if state == NEVER:
        return state
    state &= ~((1 << direction) | _LAST_WRITE)
    return state | direction << 2 | (1 << direction if waited else 0)


_STATES = range(NEVER + 1)
#: ``START[direction][state]``: the state when an op starts (higher: wait first)
START = tuple(tuple(_start(s, d) for s in _STATES) for d in (READ, WRITE))
#: ``DONE[direction][state]``: the state after an op that did not wait
DONE = tuple(tuple(_done(s, d, False) for s in _STATES) for d in (READ, WRITE))
#: ``DONE_WAITED[direction][state]``: the state after an op that waited
DONE_WAITED = tuple(tuple(_done(s, d, True) for s in _STATES) for d in (READ, WRITE))
