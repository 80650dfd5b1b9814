import asyncio
import os
import socket
import ssl
import subprocess
import tempfile
import threading

from adapt import Async, AsyncSSLSocket


async def open_tls(
    address: tuple[str, int], context: ssl.SSLContext, hostname: str
) -> AsyncSSLSocket:
    """Connect, then handshake, without blocking the loop."""
    raw = Async(socket.socket())
    try:
        await raw.connect(address)
    except BaseException:
        raw.close()
        raise
    sock = raw.into_inner()  # blocking again, and no longer watched
    tls = context.wrap_socket(sock, server_hostname=hostname, do_handshake_on_connect=False)
    a = Async(tls)  # an AsyncSSLSocket: non-blocking from here on
    try:
        await a.do_handshake()  # waits in whichever direction OpenSSL asks
    except BaseException:
        a.close()
        raise
    return a


def serve_one(listener: socket.socket, context: ssl.SSLContext) -> None:
    """A blocking TLS echo server for one connection."""
    conn, _ = listener.accept()
    with context.wrap_socket(conn, server_side=True) as tls:
        while data := tls.recv(1024):
            tls.sendall(data.upper())


async def main(folder: str) -> None:
    cert, key = os.path.join(folder, "cert.pem"), os.path.join(folder, "key.pem")
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
         "-nodes", "-days", "1", "-subj", "/CN=localhost", "-addext",
         "subjectAltName=DNS:localhost", "-keyout", key, "-out", cert],
        check=True, capture_output=True,
    )  # fmt: skip
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_context.load_cert_chain(cert, key)
    client_context = ssl.create_default_context(cafile=cert)
    with socket.create_server(("127.0.0.1", 0)) as listener:
        server = threading.Thread(target=serve_one, args=(listener, server_context))
        server.start()
        async with await open_tls(listener.getsockname(), client_context, "localhost") as tls:
            await tls.sendall(b"hello over tls")
            print(await tls.recv(1024))
        await asyncio.to_thread(server.join)


with tempfile.TemporaryDirectory() as folder:
    asyncio.run(main(folder))

# Output:
# b'HELLO OVER TLS'
