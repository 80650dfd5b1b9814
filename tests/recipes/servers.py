"""Real servers for the recipe tests, on loopback, on free ports, in temp dirs.

Each ``start_*`` function is a context manager that starts one server, waits
until it accepts connections and stops it on the way out -- also when the
test fails or the start itself fails.  A server that cannot start fails the
test with its log (never a skip): the Debian packages are ``postgresql``,
``mosquitto``, ``redis-server`` and ``openssh-server`` (scripts/test.sh
installs them).
"""

from __future__ import annotations

import contextlib
import getpass
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

TIMEOUT = 20.0
PG_BIN = Path("/usr/lib/postgresql/15/bin")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _program(name: str, *fallbacks: str) -> str:
    found = shutil.which(name)
    for path in fallbacks:
        if found is None and os.access(path, os.X_OK):
            found = path
    if found is None:
        pytest.fail(f"{name} is not installed (see scripts/test.sh for the Debian package)")
    return found


def _listening(port: int, proc: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + TIMEOUT
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            break
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.02)
    raise RuntimeError(f"server did not start listening on {port}; its log:\n{log.read_text()}")


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)


@contextlib.contextmanager
def _daemon(argv: list[str], port: int, workdir: Path) -> Iterator[None]:
    """Run ``argv`` (which stays in the foreground) until the block ends."""
    log = workdir / "server.log"
    with log.open("ab") as out:
        proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out, stderr=out)
    try:
        _listening(port, proc, log)
        yield
    finally:
        _stop(proc)


@dataclass(frozen=True)
class Postgres:
    port: int
    socket_dir: str

    @property
    def dsn(self) -> str:
        return f"host=127.0.0.1 port={self.port} user=postgres dbname=postgres"


@contextlib.contextmanager
def start_postgres() -> Iterator[Postgres]:
    """PostgreSQL 15 with trust auth and fsync off (about a second to start)."""
    initdb = PG_BIN / "initdb"
    if not os.access(initdb, os.X_OK):
        pytest.fail("PostgreSQL 15 is not installed (Debian package: postgresql)")
    # PostgreSQL refuses to run as root: run it as the postgres user, in a
    # directory outside pytest's (root-only) temp tree
    as_root = os.geteuid() == 0
    run_as = ["runuser", "-u", "postgres", "--"] if as_root else []
    workdir = tempfile.mkdtemp(prefix="adapt-pg-")
    try:
        if as_root:
            user = pwd.getpwnam("postgres")
            os.chown(workdir, user.pw_uid, user.pw_gid)
        data = f"{workdir}/data"
        log = Path(workdir) / "server.log"
        subprocess.run(
            [*run_as, str(initdb), "-D", data, "-A", "trust", "-U", "postgres", "--no-sync"],
            check=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            timeout=60,
        )
        for _attempt in range(3):  # the free port may be taken before the server binds it
            port = free_port()
            options = f"-p {port} -k {workdir} -c listen_addresses=127.0.0.1 -c fsync=off"
            pg_ctl = [*run_as, str(PG_BIN / "pg_ctl"), "-D", data, "-l", str(log)]
            started = subprocess.run(
                [*pg_ctl, "-w", "-t", str(int(TIMEOUT)), "-o", options, "start"],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                timeout=TIMEOUT + 10,
            )
            if started.returncode == 0:
                break
        else:
            pytest.fail(f"PostgreSQL did not start; its log:\n{log.read_text()}")
        try:
            yield Postgres(port, workdir)
        finally:
            subprocess.run(
                [*run_as, str(PG_BIN / "pg_ctl"), "-D", data, "-m", "immediate", "-w", "stop"],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                timeout=TIMEOUT + 10,
            )
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


@contextlib.contextmanager
def _on_free_port(argv_for: Callable[[int, Path], list[str]], workdir: Path) -> Iterator[int]:
    errors: list[str] = []
    for _attempt in range(3):  # the free port may be taken before the server binds it
        port = free_port()
        with contextlib.ExitStack() as stack:
            try:
                stack.enter_context(_daemon(argv_for(port, workdir), port, workdir))
            except RuntimeError as exc:
                errors.append(str(exc))
                continue
            yield port
            return
    pytest.fail("\n".join(errors))


@contextlib.contextmanager
def start_mosquitto(workdir: Path) -> Iterator[int]:
    """A mosquitto broker with anonymous access; yields its port."""
    binary = _program("mosquitto", "/usr/sbin/mosquitto")

    def argv(port: int, workdir: Path) -> list[str]:
        conf = workdir / "mosquitto.conf"
        conf.write_text(f"listener {port} 127.0.0.1\nallow_anonymous true\n")
        return [binary, "-c", str(conf)]

    with _on_free_port(argv, workdir) as port:
        yield port


@contextlib.contextmanager
def start_redis(workdir: Path) -> Iterator[int]:
    """redis-server without persistence; yields its port."""
    binary = _program("redis-server", "/usr/bin/redis-server")

    def argv(port: int, workdir: Path) -> list[str]:
        return [
            binary,
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--dir",
            str(workdir),
        ]

    with _on_free_port(argv, workdir) as port:
        yield port


@dataclass(frozen=True)
class Sshd:
    port: int
    user: str
    client_key: Path


@contextlib.contextmanager
def start_sshd(workdir: Path) -> Iterator[Sshd]:
    """OpenSSH's sshd with its own host key, accepting one client key."""
    binary = _program("sshd", "/usr/sbin/sshd")
    keygen = _program("ssh-keygen")
    if os.geteuid() == 0:
        os.makedirs("/run/sshd", exist_ok=True)  # its privilege-separation dir
    host_key, client_key = workdir / "host_key", workdir / "client_key"
    for key in (host_key, client_key):
        subprocess.run(
            [keygen, "-q", "-t", "ed25519", "-N", "", "-f", str(key)],
            check=True,
            stdout=subprocess.DEVNULL,
        )
    authorized = workdir / "authorized_keys"
    authorized.write_text((workdir / "client_key.pub").read_text())

    def argv(port: int, workdir: Path) -> list[str]:
        conf = workdir / "sshd_config"
        conf.write_text(
            f"Port {port}\nListenAddress 127.0.0.1\nHostKey {host_key}\n"
            f"AuthorizedKeysFile {authorized}\nPidFile {workdir}/sshd.pid\n"
            "UsePAM no\nStrictModes no\nPasswordAuthentication no\n"
            "KbdInteractiveAuthentication no\nPermitRootLogin prohibit-password\n"
            "LogLevel ERROR\n"
        )
        return [binary, "-D", "-e", "-f", str(conf)]

    with _on_free_port(argv, workdir) as port:
        yield Sshd(port, getpass.getuser(), client_key)
