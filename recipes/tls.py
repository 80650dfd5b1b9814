"""TLS client and server streams over ssl.SSLSocket, without a thread.

Requires: standard library (``ssl``, ``socket``).

Platforms: Linux (any platform adapt runs on).

Adapts: ``socket.create_connection`` + ``SSLContext.wrap_socket`` (client)
and ``accept`` + ``wrap_socket(server_side=True)`` (server), returning an
:class:`adapt.BufferedStream` (``readline``, ``readexactly``, ``write_all``...).
The ssl module's would-block signals are ``SSLWantReadError`` /
``SSLWantWriteError``, which adapt maps onto waiting for the direction
OpenSSL asks for -- so a handshake, a TLS 1.2 renegotiation or a TLS 1.3
KeyUpdate in the middle of a transfer (a read that must write, or a write
that must read) just works.  Bytes OpenSSL already decrypted
(``pending()``) are returned without a wait: adapt tries the op first.
Server name indication and hostname checks are the context's
(``server_hostname`` defaults to ``host``).  :func:`unwrap` exchanges
close_notify alerts and returns the plain socket.

Mode: a ``socket.socket`` and an ``ssl.SSLSocket`` are kinds adapt knows:
``Async`` makes them non-blocking (``settimeout(0.0)``, restored by
``into_inner()``).

Caveats: name resolution (``getaddrinfo``) blocks, so it runs in a worker
thread (:func:`adapt.run_sync`); everything else stays in the task.  Timeouts
are the caller's (``asyncio.timeout``, ``trio.move_on_after``).
:func:`accept_tls` handshakes before it returns: a server should call it in
a loop whose connections run in their own tasks, or accept with
``Async(listener).accept()`` and call :func:`server_handshake` in each
connection's task, so one slow client cannot hold up the others.  TLS 1.2
renegotiation makes writes read handshake records: OpenSSL fails a write
that meets application data in the middle of it (``UNEXPECTED_RECORD``), so
on a TLS 1.2 connection that may renegotiate, don't write while another task
reads.  TLS 1.3 (KeyUpdate) has no such limit.

Example::

    import asyncio
    from adapt.recipes.tls import connect_tls, unwrap

    async def main():
        # `server` is an HTTPS server on localhost with a certificate
        # that `context` trusts (the test starts `openssl s_server`)
        stream = await connect_tls("localhost", port, context=context)
        await stream.write_all(b"ping\\n")
        print(await stream.readline())
        sock = await unwrap(stream)
        sock.close()

    asyncio.run(main())
"""

from __future__ import annotations

import socket
import ssl
from typing import Any

from adapt import Async, BufferedStream, run_sync

__all__ = ["LIBRARY", "SUMMARY", "accept_tls", "connect_tls", "server_handshake", "unwrap"]

LIBRARY = None
SUMMARY = "TLS client and server streams over ssl.SSLSocket, without a thread."


async def _handshake(tls: Async[ssl.SSLSocket]) -> BufferedStream:
    try:
        # SSLWantReadError / SSLWantWriteError: wait in the direction asked
        await tls.read_with(ssl.SSLSocket.do_handshake)
    except BaseException:
        tls.close()
        raise
    return BufferedStream(tls)


async def connect_tls(
    host: str,
    port: int,
    *,
    context: ssl.SSLContext | None = None,
    server_hostname: str | None = None,
) -> BufferedStream:
    """Connect over TCP, then handshake; the sync twin::

    sock = context.wrap_socket(socket.create_connection((host, port)),
                               server_hostname=host)
    stream = await connect_tls(host, port, context=context)
    """
    context = ssl.create_default_context() if context is None else context
    infos = await run_sync(lambda: socket.getaddrinfo(host, port, type=socket.SOCK_STREAM))
    errors: list[OSError] = []
    for family, kind, proto, _, address in infos:
        sock = socket.socket(family, kind, proto)
        try:
            plain = Async(sock)
            await plain.connect(address)
            plain.into_inner()  # deregistered: the fd moves to the SSLSocket
        except OSError as exc:
            sock.close()
            errors.append(exc)
            continue
        except BaseException:
            sock.close()
            raise
        try:
            tls = context.wrap_socket(
                sock, server_hostname=server_hostname or host, do_handshake_on_connect=False
            )
        except BaseException:
            sock.close()
            raise
        return await _handshake(Async(tls))
    if not errors:
        raise OSError(f"getaddrinfo found no address for {host!r}")
    if len(errors) == 1:
        raise errors[0]
    raise OSError(f"could not connect to {host}:{port}: {errors}")


async def server_handshake(sock: socket.socket, context: ssl.SSLContext) -> BufferedStream:
    """Handshake as the server on an accepted socket::

    tls = context.wrap_socket(conn, server_side=True)       # sync
    stream = await server_handshake(conn, context)          # async
    """
    try:
        tls = context.wrap_socket(sock, server_side=True, do_handshake_on_connect=False)
    except BaseException:
        sock.close()
        raise
    return await _handshake(Async(tls))


async def accept_tls(
    listener: Async[socket.socket], context: ssl.SSLContext
) -> tuple[BufferedStream, Any]:
    """Accept one connection and handshake; returns ``(stream, address)``::

    conn, address = listener.accept()                       # sync
    stream, address = await accept_tls(Async(listener), context)
    """
    conn, address = await listener.read_with(socket.socket.accept)
    return await server_handshake(conn, context), address


async def unwrap(stream: BufferedStream) -> socket.socket:
    """Send close_notify, wait for the peer's, return the plain socket.

    Read the peer's data first: bytes still buffered in ``stream`` are lost.
    """
    tls = stream.wrapper
    sock: socket.socket = await tls.read_with(ssl.SSLSocket.unwrap)
    tls.into_inner()  # deregistered and blocking again; the caller owns it
    return sock
