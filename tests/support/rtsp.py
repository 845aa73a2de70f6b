"""Start, stop, kill and freeze a real RTSP server (tests/support/rtsp_server.py) from tests.

    with RtspServer(file=clip) as server:   # or RtspServer(pattern="ball")
        url = server.url
        server.kill(); server.start()        # same port, same URL
        server.freeze(); server.thaw()       # SIGSTOP / SIGCONT: a hung camera
"""

from __future__ import annotations

import os
import random
import selectors
import signal
import socket
import subprocess
from pathlib import Path

SERVER_SCRIPT = Path(__file__).with_name("rtsp_server.py")
# PyGObject with gst-rtsp-server is packaged for the distribution's python, not for virtualenvs.
SERVER_PYTHON = os.environ.get("RTSP_SERVER_PYTHON", "/usr/bin/python3")
READY_TIMEOUT_SECONDS = 10.0


def steady_port() -> int:
    """A free port below the kernel's ephemeral range, for a server that is killed and started again
    on it. A port from free_port() is an ephemeral one: while its server is down, the kernel may give
    it to any connecting socket (the camera reconnecting to that very port can even connect to itself
    on it, or another process's connection can take it) or to another test's free_port(), and the
    restart then finds it taken. Ports below the range are handed out only to whoever asks for them."""
    try:
        first = int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        first = 32768  # Linux's default
    for port in random.sample(range(max(1024, first - 12000), first), 100):
        with socket.socket() as s:
            try:
                s.bind(("0.0.0.0", port))  # where the server listens
            except OSError:
                continue
            return port
    raise RuntimeError(f"no free port below {first}")


def serve_with_audio(path: str | Path) -> str:
    """A launch line serving an MP4's H.264 and AAC as they are (`file=` serves the video only)."""
    return (
        f'( filesrc location="{path}" ! qtdemux name=d'
        " d.video_0 ! queue ! h264parse ! rtph264pay name=pay0 pt=96 config-interval=1"
        " d.audio_0 ! queue ! aacparse ! rtpmp4gpay name=pay1 pt=97 )"
    )


class RtspServer:
    """One gst-rtsp-server subprocess serving one mount; keeps its port across restarts."""

    def __init__(
        self,
        file: str | Path | None = None,
        *,
        pattern: str | None = None,
        launch: str | None = None,
        port: int | None = None,
        mount: str = "/cam",
    ) -> None:
        media = [(flag, str(v)) for flag, v in (("--file", file), ("--pattern", pattern), ("--launch", launch)) if v]
        if len(media) != 1:
            raise ValueError("give exactly one of file, pattern or launch")
        self.port = port or steady_port()
        self.mount = mount
        self._args = [SERVER_PYTHON, str(SERVER_SCRIPT), "--port", str(self.port), "--mount", mount, *media[0]]
        self._proc: subprocess.Popen[str] | None = None

    @property
    def url(self) -> str:
        return f"rtsp://127.0.0.1:{self.port}{self.mount}"

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc else None

    def start(self) -> RtspServer:
        if self._proc is not None:
            raise RuntimeError("RTSP server already running")
        proc = subprocess.Popen(self._args, stdout=subprocess.PIPE, text=True)
        self._proc = proc
        assert proc.stdout is not None
        with selectors.DefaultSelector() as sel:
            sel.register(proc.stdout, selectors.EVENT_READ)
            if not sel.select(READY_TIMEOUT_SECONDS):
                self.kill()
                raise RuntimeError(f"RTSP server not ready after {READY_TIMEOUT_SECONDS:.0f}s: {' '.join(self._args)}")
        line = proc.stdout.readline()
        if not line.startswith("READY"):
            self.kill()
            raise RuntimeError(f"RTSP server failed to start (exit {proc.poll()}): {' '.join(self._args)}")
        return self

    def stop(self) -> None:
        """Graceful stop (SIGTERM), with SIGKILL if it does not go."""
        self._end(signal.SIGTERM)

    def kill(self) -> None:
        """Vanish without a goodbye, like a camera losing power."""
        self._end(signal.SIGKILL)

    def freeze(self) -> None:
        """Hang the server (SIGSTOP): connections stay open but nothing moves."""
        self._signal(signal.SIGSTOP)

    def thaw(self) -> None:
        self._signal(signal.SIGCONT)

    def restart(self) -> RtspServer:
        self.kill()
        return self.start()

    def _signal(self, sig: signal.Signals) -> None:
        if self._proc is None:
            raise RuntimeError("RTSP server not running")
        self._proc.send_signal(sig)

    def _end(self, sig: signal.Signals) -> None:
        proc, self._proc = self._proc, None
        if proc is None:
            return
        if proc.poll() is None:
            proc.send_signal(sig)
            proc.send_signal(signal.SIGCONT)  # a frozen server must run to handle SIGTERM
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        if proc.stdout:
            proc.stdout.close()

    def __enter__(self) -> RtspServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
