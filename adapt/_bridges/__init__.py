"""Callback bridges: ``oneshot()``, ``channel()`` and ``Portal``.

``_oneshot``: one callback, one awaitable value; ``_buffer``: the bounded
buffer behind ``_channel``'s many values; ``_portal``: calls into the loop
from other threads.  Built on ``adapt._backends`` only.
"""
