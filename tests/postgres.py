"""A real PostgreSQL for the tests: Debian's server, `initdb` in a temp dir, on a free loopback port.

PostgreSQL refuses to run as root, so as root the cluster belongs to the `postgres` user and its
programs run through `runuser`. Each test gets a database of its own (`PostgresServer.database`).
"""

from __future__ import annotations

import glob
import itertools
import os
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg

# Distinctive, so a test can prove it never reaches a row, a checkpoint, a log or an error.
PASSWORD = "pg-pass-0123456789abcdefSECRET"
USER = "modelyard"
MISSING = (
    "PostgreSQL's server programs are not installed (no /usr/lib/postgresql/*/bin/initdb). "
    "Install Debian's: apt-get install -y --no-install-recommends postgresql (make test does it)."
)


def find_bin() -> Path | None:
    """The newest installed server's bin directory."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(Path(p).parts[-3]))
    return Path(found[-1]).parent if found else None


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class PostgresServer:
    """One cluster; `url()` for its main database, `database()` for a fresh one."""

    def __init__(self, bindir: Path, root: Path) -> None:
        self.bindir, self.root = bindir, root
        self.data, self.sockets, self.log = root / "data", root / "sockets", root / "server.log"
        self.port = _free_port()
        self.host = "127.0.0.1"
        self._names = itertools.count(1)

    def _run(self, program: str, *args: str) -> None:
        command = [str(self.bindir / program), *args]
        if os.geteuid() == 0:
            command = ["runuser", "-u", "postgres", "--", *command]
        done = subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)
        if done.returncode != 0:
            raise RuntimeError(f"{program} failed ({done.returncode}): {done.stderr or done.stdout}")

    def start(self) -> None:
        self.sockets.mkdir()
        if os.geteuid() == 0:
            shutil.chown(self.root, "postgres")
            shutil.chown(self.sockets, "postgres")
        auth = self.root / "pwfile"
        auth.write_text("postgres\n")  # the superuser's password, for host (TCP) logins
        if os.geteuid() == 0:
            shutil.chown(auth, "postgres")
        self._run(
            "initdb", "-D", str(self.data), "-U", "postgres", f"--pwfile={auth}",
            "--auth-local=trust", "--auth-host=scram-sha-256", "-E", "UTF8", "--no-sync",
        )  # fmt: skip
        options = f"-p {self.port} -k {self.sockets} -c listen_addresses={self.host} -c fsync=off"
        self._run("pg_ctl", "-D", str(self.data), "-l", str(self.log), "-o", options, "-w", "start")
        with self.admin() as conn:
            conn.execute(f"CREATE ROLE {USER} LOGIN PASSWORD '{PASSWORD}'".encode())

    def stop(self) -> None:
        if (self.data / "postmaster.pid").exists():
            self._run("pg_ctl", "-D", str(self.data), "-m", "immediate", "-w", "stop")

    def admin(self) -> psycopg.Connection[tuple[object, ...]]:
        """The superuser over the unix socket in the temp dir (trusted)."""
        return psycopg.connect(
            host=str(self.sockets), port=self.port, user="postgres", dbname="postgres", autocommit=True
        )

    def database(self) -> str:
        """A new, empty database owned by the test user; its URL (with the password)."""
        name = f"test_{next(self._names)}"
        with self.admin() as conn:
            conn.execute(f"CREATE DATABASE {name} OWNER {USER}".encode())
        return self.url(name)

    def url(self, name: str, *, password: str = PASSWORD, port: int | None = None) -> str:
        return f"postgresql://{USER}:{password}@{self.host}:{port or self.port}/{name}"


@contextmanager
def running_postgres() -> Iterator[PostgresServer]:
    """Start a cluster for the session; stop it and remove its files afterwards."""
    bindir = find_bin()
    if bindir is None:
        raise FileNotFoundError(MISSING)
    # Not pytest's tmp dir: that one is private to root, and the server runs as `postgres`.
    root = Path(tempfile.mkdtemp(prefix="modelyard-pg-"))
    server = PostgresServer(bindir, root)
    try:
        server.start()
        yield server
    finally:
        try:
            server.stop()
        finally:
            shutil.rmtree(root, ignore_errors=True)
