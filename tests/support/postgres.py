"""A real PostgreSQL server for tests: a cluster made with initdb in a folder of its own, listening on
a free loopback port and on a unix socket in that folder, one fresh database per test.

PostgreSQL refuses to run as root: as root the cluster belongs to the `postgres` OS user (Debian's
package creates it) and its folder is handed over to it. Without the server binaries the tests that
need it skip, except in CI (`CI` set), where .ci/run installs Debian's `postgresql` and a missing
server is a broken set-up."""

from __future__ import annotations

import glob
import itertools
import os
import pwd
import shutil
import subprocess
import tempfile
from pathlib import Path
from types import TracebackType

import pytest

from support.mosquitto import free_port

STORES = ("sqlite", "postgresql")  # params of the fixtures that run a test on both stores
SERVER_USER = "postgres"  # the OS user the server runs as when the tests run as root


def server_bin() -> Path | None:
    """The folder with initdb and pg_ctl: on PATH, else Debian's /usr/lib/postgresql/<version>/bin (newest)."""
    found = shutil.which("pg_ctl")
    if found:
        return Path(found).parent
    versions = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"), key=lambda p: int(Path(p).parts[-3]))
    return Path(versions[-1]).parent if versions else None


def need_server() -> Path:
    folder = server_bin()
    try:
        import psycopg  # noqa: F401, PLC0415
    except ImportError:
        folder = None
    if folder is None:
        if os.environ.get("CI"):
            pytest.fail("no PostgreSQL server or psycopg: CI installs Debian's postgresql and the test extra (see .ci/run)")
        pytest.skip("no PostgreSQL server (Debian: apt-get install postgresql) or no psycopg (pip install 'psycopg[binary]')")
    return folder


class PostgresServer:
    """`with PostgresServer() as pg:` ... `pg.database()` gives the URL of a new, empty database."""

    def __init__(self, bin_dir: Path) -> None:
        self.bin = bin_dir
        self.port = free_port()
        self.folder = Path(tempfile.mkdtemp(prefix="memory-postgres-"))
        self.data = self.folder / "data"
        self.log = self.folder / "server.log"
        self._names = itertools.count(1)
        self._as: list[str] = []
        if os.geteuid() == 0:
            user = pwd.getpwnam(SERVER_USER)
            os.chown(self.folder, user.pw_uid, user.pw_gid)
            self._as = ["runuser", "-u", SERVER_USER, "--"]

    def url(self, name: str = "postgres") -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{name}"

    def _run(self, *args: str) -> None:
        done = subprocess.run([*self._as, *args], capture_output=True, text=True, cwd=self.folder)
        if done.returncode != 0:
            raise RuntimeError(f"{Path(args[0]).name} failed: {(done.stdout + done.stderr)[-2000:]}")

    def start(self) -> None:
        # trust on loopback and the socket: a throwaway cluster; fsync off: tests do not survive power cuts
        self._run(str(self.bin / "initdb"), "-D", str(self.data), "-U", "postgres", "-A", "trust", "-E", "UTF8", "--no-sync")
        self.resume()

    def halt(self) -> None:
        """The server goes away as in a restart (its clients' connections break); its data stays."""
        if (self.data / "postmaster.pid").exists():
            self._run(str(self.bin / "pg_ctl"), "-D", str(self.data), "-m", "fast", "-w", "stop")

    def resume(self) -> None:
        options = f"-p {self.port} -k {self.folder} -c listen_addresses=127.0.0.1 -c fsync=off -c full_page_writes=off"
        self._run(str(self.bin / "pg_ctl"), "-D", str(self.data), "-l", str(self.log), "-o", options, "-w", "-t", "30", "start")

    def stop(self) -> None:
        self.halt()
        shutil.rmtree(self.folder, ignore_errors=True)

    def database(self, template: str | None = None) -> str:
        """A new database (a copy of `template`, a database name, if given); returns its URL."""
        import psycopg  # noqa: PLC0415

        name = f"test_{next(self._names)}"
        with psycopg.connect(self.url(), autocommit=True) as admin:
            admin.execute(f"CREATE DATABASE {name}" + (f" TEMPLATE {template}" if template else ""))
        return self.url(name)

    def __enter__(self) -> PostgresServer:
        self.start()
        return self

    def __exit__(self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None) -> None:
        self.stop()


def database_name(url: str) -> str:
    return url.rsplit("/", 1)[1]
