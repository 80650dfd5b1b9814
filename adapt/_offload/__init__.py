"""Thread offload: ``run_sync``, ``@asyncify``, ``reader()`` / ``writer()``, ``iterate()``.

``_pool``: the worker threads; ``_limiter``: ``CapacityLimiter``;
``_threads``: ``run_sync`` and its cancellation policies; ``_asyncify``: the
decorator and pinned objects; ``_reader`` / ``_writer``: byte streams pumped
by a worker; ``_iterate``: a sync iterator run in a worker.  Built on
``adapt._backends`` only.
"""
