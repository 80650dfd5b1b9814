"""TLS test fixtures: a certificate made here, and ``openssl`` peers."""

from __future__ import annotations

import re
import ssl
import subprocess
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

from adapt import BufferedStream


@dataclass
class Cert:
    cert: Path
    key: Path

    def server_context(self) -> ssl.SSLContext:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(self.cert, self.key)
        return context

    def client_context(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=str(self.cert))


def make_cert(folder: Path) -> Cert:
    """A self-signed certificate for ``localhost``."""
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        [
            *("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1"),
            *("-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost"),
            *("-keyout", str(key), "-out", str(cert)),
        ],
        check=True,
        capture_output=True,
        timeout=60,
    )
    return Cert(cert, key)


@dataclass
class Peer:
    """An ``openssl s_server`` / ``s_client``: its stdin and its stdout."""

    proc: subprocess.Popen[bytes]
    stdin: BufferedStream
    stdout: BufferedStream
    port: int = 0

    async def wait_for(self, pattern: bytes) -> bytes:
        """Read the peer's output up to the first line matching ``pattern``."""
        while True:
            line = await self.stdout.readline()
            if not line:
                raise EOFError(f"the peer ended before printing {pattern!r}")
            if re.search(pattern, line):
                return line


@asynccontextmanager
async def openssl(*args: str) -> AsyncIterator[Peer]:
    proc = subprocess.Popen(
        ["openssl", *args],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        bufsize=0,
    )
    assert proc.stdin is not None
    assert proc.stdout is not None
    peer = Peer(proc, BufferedStream(proc.stdin), BufferedStream(proc.stdout))
    try:
        yield peer
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait()
        peer.stdin.close()
        peer.stdout.close()


@asynccontextmanager
async def s_server(cert: Cert, *extra: str) -> AsyncIterator[Peer]:
    """``openssl s_server`` on a free loopback port, for one connection."""
    async with openssl(
        "s_server",
        *("-accept", "127.0.0.1:0", "-naccept", "1"),
        *("-cert", str(cert.cert), "-key", str(cert.key)),
        *extra,
    ) as peer:
        line = await peer.wait_for(rb"^ACCEPT ")
        match = re.search(rb":(\d+)$", line.strip())
        assert match is not None, line
        peer.port = int(match.group(1))
        yield peer
