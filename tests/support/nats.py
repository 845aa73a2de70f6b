"""A real NATS server with JetStream for tests: a free loopback port and its own store folder;
start, kill and restart keep both, so what JetStream stored survives a restart."""

from __future__ import annotations

import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path
from types import TracebackType

from support.mosquitto import free_port

NATS_SERVER = shutil.which("nats-server") or "nats-server"
START_TIMEOUT = 10.0


class NatsServer:
    """`with NatsServer(tmp_path) as nats:` ... `nats.url`; `token` makes it ask clients for one."""

    def __init__(self, folder: Path, token: str | None = None) -> None:
        self.port = free_port()
        self.store = folder / "jetstream"
        self.log = folder / "nats.log"
        self.token = token
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"nats://127.0.0.1:{self.port}"

    def start(self) -> None:
        args = [NATS_SERVER, "-js", "-a", "127.0.0.1", "-p", str(self.port), "-sd", str(self.store)]
        if self.token is not None:
            args += ["--auth", self.token]
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                    return
            except OSError:
                if self.proc.poll() is not None:
                    raise RuntimeError(f"nats-server exited: {self.log.read_text()[-2000:]}") from None
                time.sleep(0.05)
        raise RuntimeError("nats-server did not start")

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(sig)
            self.proc.wait(10)
        self.proc = None

    def kill(self) -> None:
        self.stop(signal.SIGKILL)

    def __enter__(self) -> NatsServer:
        self.start()
        return self

    def __exit__(self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None) -> None:
        self.stop()
