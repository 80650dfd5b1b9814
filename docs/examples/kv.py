"""kv: a small synchronous client for a line-based key-value protocol.

It stands for the synchronous library you already have.  A request is one
line (``GET key`` or ``SET key value``), and so is each reply.
"""

from __future__ import annotations

import socket
import socketserver
import threading
from typing import ClassVar


class KVClient:
    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self._buffer = b""  # bytes received but not yet returned

    @staticmethod
    def encode_request(*words: str) -> bytes:
        return " ".join(words).encode() + b"\n"

    def read_reply(self) -> str:
        while b"\n" not in self._buffer:
            data = self.sock.recv(4096)  # blocks until the server answers
            if not data:
                raise ConnectionError("the server closed the connection")
            self._buffer += data
        line, _, self._buffer = self._buffer.partition(b"\n")
        return line.decode()

    def get(self, key: str) -> str:
        self.sock.sendall(self.encode_request("GET", key))
        return self.read_reply()

    def set(self, key: str, value: str) -> str:
        self.sock.sendall(self.encode_request("SET", key, value))
        return self.read_reply()


class _Handler(socketserver.StreamRequestHandler):
    store: ClassVar[dict[str, str]] = {}

    def handle(self) -> None:
        for line in self.rfile:
            command, key, *value = line.decode().split()
            if command == "SET":
                self.store[key] = " ".join(value)
                self.wfile.write(b"OK\n")
            else:
                self.wfile.write(self.store.get(key, "(none)").encode() + b"\n")


def start_server() -> tuple[str, int]:
    """A kv server on loopback, in a daemon thread; returns its address."""
    server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), _Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    host, port = server.server_address[:2]
    return str(host), int(port)
