"""``AsyncSSLSocket`` against real TLS on loopback, on asyncio, uvloop and trio.

Both ends are real OpenSSL sessions over a TCP connection, with a
self-signed certificate made for the test run.
"""

from __future__ import annotations

import datetime
import select
import socket
import ssl
from collections.abc import Iterator
from pathlib import Path

import anyio
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from adapt import Async, AsyncSSLSocket


@pytest.fixture(scope="module")
def cert(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost")]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    folder = tmp_path_factory.mktemp("tls")
    cert_path, key_path = folder / "cert.pem", folder / "key.pem"
    cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


@pytest.fixture
def tls_pair(
    cert: tuple[Path, Path], request: pytest.FixtureRequest
) -> Iterator[tuple[ssl.SSLSocket, ssl.SSLSocket]]:
    """``(server, client)``: a TCP connection wrapped on both ends, not yet handshaken."""
    hostname = getattr(request, "param", "localhost")
    server_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_ctx.load_cert_chain(*cert)
    client_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    client_ctx.load_verify_locations(cert[0])
    with socket.create_server(("127.0.0.1", 0)) as listener:
        raw_client = socket.create_connection(listener.getsockname())
        raw_server, _ = listener.accept()
    server = server_ctx.wrap_socket(raw_server, server_side=True, do_handshake_on_connect=False)
    client = client_ctx.wrap_socket(
        raw_client, server_hostname=hostname, do_handshake_on_connect=False
    )
    with server, client:
        yield server, client


# start: tls-client
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


# end: tls-client


async def test_open_tls_against_a_tls_server(backend: str, cert: tuple[Path, Path]) -> None:
    server_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_ctx.load_cert_chain(*cert)
    client_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    client_ctx.load_verify_locations(cert[0])
    async with Async(socket.create_server(("127.0.0.1", 0))) as listener:

        async def serve() -> None:
            conn, _ = await listener.accept()
            plain = conn.into_inner()
            tls = server_ctx.wrap_socket(plain, server_side=True, do_handshake_on_connect=False)
            async with Async(tls) as server:
                await server.do_handshake()
                await server.sendall(await server.recv(100))

        async with anyio.create_task_group() as tg:
            tg.start_soon(serve)
            address = listener.get_ref().getsockname()
            async with await open_tls(address, client_ctx, "localhost") as client:
                await client.sendall(b"echo me")
                assert await client.recv(100) == b"echo me"


async def _handshake(server: AsyncSSLSocket, client: AsyncSSLSocket) -> None:
    async with anyio.create_task_group() as tg:
        tg.start_soon(server.do_handshake)
        await client.do_handshake()


async def test_handshake_then_data(
    backend: str, tls_pair: tuple[ssl.SSLSocket, ssl.SSLSocket]
) -> None:
    async with Async(tls_pair[0]) as server, Async(tls_pair[1]) as client:
        assert isinstance(server, AsyncSSLSocket)
        await _handshake(server, client)
        assert client.get_ref().version() is not None
        assert await client.send(b"hello over tls") == 14
        assert await server.recv(100) == b"hello over tls"
        await server.sendall(b"and back")
        buf = bytearray(20)
        n = await client.recv_into(buf)
        assert bytes(buf[:n]) == b"and back"


async def test_recv_waits_for_the_peer(
    backend: str, tls_pair: tuple[ssl.SSLSocket, ssl.SSLSocket]
) -> None:
    async with Async(tls_pair[0]) as server, Async(tls_pair[1]) as client:
        await _handshake(server, client)

        async def later() -> None:
            await anyio.sleep(0.05)
            await server.send(b"late")

        async with anyio.create_task_group() as tg:
            tg.start_soon(later)
            assert await client.recv(100) == b"late"


async def test_sendall_a_lot_both_ways(
    backend: str, tls_pair: tuple[ssl.SSLSocket, ssl.SSLSocket]
) -> None:
    data = bytes(range(256)) * 8192  # 2 MiB: the socket buffers fill, SSL_write waits
    async with Async(tls_pair[0]) as server, Async(tls_pair[1]) as client:
        await _handshake(server, client)
        got = bytearray()

        async def reader() -> None:
            while len(got) < len(data):
                got.extend(await server.recv(65536))

        async with anyio.create_task_group() as tg:
            tg.start_soon(reader)
            await client.sendall(data)
        assert got == data


async def test_pending_data_is_read_without_waiting(
    backend: str, tls_pair: tuple[ssl.SSLSocket, ssl.SSLSocket]
) -> None:
    async with Async(tls_pair[0]) as server, Async(tls_pair[1]) as client:
        await _handshake(server, client)
        await server.sendall(b"x" * 1000)  # one TLS record
        tls = client.get_ref()
        select.select([tls], [], [], 5)
        assert await client.recv(10) == b"x" * 10
        # The rest is decrypted inside OpenSSL; the fd has nothing to report.
        assert tls.pending() == 990
        assert select.select([tls], [], [], 0) == ([], [], [])
        with anyio.fail_after(1):  # a wait on the fd would never end: the peer is idle
            await client.readable()
            assert await client.recv(4096) == b"x" * 990


async def test_unwrap_then_plain_text(
    backend: str, tls_pair: tuple[ssl.SSLSocket, ssl.SSLSocket]
) -> None:
    async with Async(tls_pair[0]) as server, Async(tls_pair[1]) as client:
        await _handshake(server, client)
        plain: list[socket.socket] = []

        async def unwrap(side: AsyncSSLSocket) -> None:
            plain.append(await side.unwrap())

        async with anyio.create_task_group() as tg:
            tg.start_soon(unwrap, server)
            tg.start_soon(unwrap, client)
        assert all(isinstance(s, socket.socket) for s in plain)
        # the TLS layer is gone: the same fds now carry plain bytes
        await client.sendall(b"in the clear")
        assert await server.recv(100) == b"in the clear"


@pytest.mark.parametrize("tls_pair", ["wrong.example"], indirect=True)
async def test_handshake_failure_propagates(
    backend: str, tls_pair: tuple[ssl.SSLSocket, ssl.SSLSocket]
) -> None:
    async with Async(tls_pair[0]) as server, Async(tls_pair[1]) as client:
        server_failed: list[BaseException] = []

        async def serve() -> None:
            try:
                await server.do_handshake()
            except ssl.SSLError as exc:
                server_failed.append(exc)

        async with anyio.create_task_group() as tg:
            tg.start_soon(serve)
            with pytest.raises(ssl.SSLCertVerificationError, match=r"wrong\.example"):
                await client.do_handshake()
        assert server_failed  # the client's alert reached the server


def test_help_shows_the_ssl_documentation(tls_pair: tuple[ssl.SSLSocket, ssl.SSLSocket]) -> None:
    Async(tls_pair[0]).into_inner()  # ssl is imported: the first wrap documents the class
    assert "The sync method (ssl.SSLSocket.recv):" in (AsyncSSLSocket.recv.__doc__ or "")


def test_ssl_shims_have_no_accept_or_connect() -> None:
    # the plain socket connects; wrap_socket(..., do_handshake_on_connect=False) after
    assert not hasattr(AsyncSSLSocket, "accept")
    assert not hasattr(AsyncSSLSocket, "connect")
