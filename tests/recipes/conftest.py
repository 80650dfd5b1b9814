"""Module-scoped fixtures for the real servers the recipe tests talk to."""

from __future__ import annotations

import signal
import socket
from collections.abc import Iterator

import pytest

from .servers import Postgres, Sshd, start_mosquitto, start_postgres, start_redis, start_sshd

# Children inherit ignored signals: a run started under ``nohup`` would give
# every child an ignored SIGHUP, and the pty tests' hang-up would not end it.
signal.signal(signal.SIGHUP, signal.SIG_DFL)


@pytest.fixture(scope="module")
def postgres() -> Iterator[Postgres]:
    with start_postgres() as server:
        yield server


@pytest.fixture(scope="module")
def mosquitto(tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    with start_mosquitto(tmp_path_factory.mktemp("mosquitto")) as port:
        yield port


@pytest.fixture(scope="module")
def redis_port(tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    with start_redis(tmp_path_factory.mktemp("redis")) as port:
        yield port


@pytest.fixture(scope="module")
def sshd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sshd]:
    with start_sshd(tmp_path_factory.mktemp("sshd")) as server:
        yield server


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A loopback port whose server accepts connections and never answers."""
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        yield silent.getsockname()[1]
