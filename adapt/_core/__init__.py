"""The readiness core behind ``Async(obj)``.

``_async``: the wrapper, ``read_with`` / ``write_with`` and the close order;
``_fd``: what an fd number names, its blocking mode, one attempt of an op;
``_predict``: whether a shim's op should wait before its first attempt;
``_subclass``: shims for subclasses of the wrapped types.  Below it, only
``adapt._backends`` (the loops) and ``adapt._errors``; the shims, streams and
recipes build on it.
"""
