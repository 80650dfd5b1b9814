"""The buffered stream layer: ``BufferedStream`` over any readiness wrapper.

``_buffered``: ``readline`` / ``readuntil`` / ``readexactly`` / ``write_all``
on top of an ``Async`` wrapper's ``read_with`` / ``write_with``.
"""
