"""The glibc calls that keep a days-long run's native memory flat are found and work, and elsewhere
they are left alone rather than failing; a live run, a worker and the memory service restart
themselves under jemalloc (installed by the test packages), unless told not to."""

import os
import platform
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from support.nats import NatsServer
from support.ports import free_port

from streamer import native_memory

GLIBC = platform.libc_ver()[0] == "glibc"


def test_glibc_calls_are_found_in_the_process_or_left_alone() -> None:
    if not GLIBC:
        assert native_memory._LIBC is None
        native_memory.cap_arenas()  # does nothing, raises nothing
        return
    assert native_memory._LIBC is not None
    assert native_memory._LIBC.mallopt(native_memory.M_ARENA_MAX, native_memory.ARENAS) == 1
    assert native_memory._LIBC.malloc_trim(0) in (0, 1)


def _libraries(folder: Path, *args: str, **env: str) -> str:
    """The shared objects mapped into `streamer ARGS` (the program itself) once it is up (its metrics
    answer), well after any restart; then it is stopped as a user stops it."""
    folder.mkdir()
    port = free_port()
    clean = {k: v for k, v in os.environ.items() if k not in ("LD_PRELOAD", native_memory.RESTARTED)}
    run = subprocess.Popen(
        [sys.executable, "-m", "streamer", *args, "-q", "--no-mqtt", "--db", "memory.db", "--metrics-port", str(port)],
        cwd=folder,
        env={**clean, **env},
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 60
        while not _answers(port):
            assert run.poll() is None and time.monotonic() < deadline
            time.sleep(0.1)
        time.sleep(0.5)  # its signal handlers follow within a few turns of its event loop
        return Path(f"/proc/{run.pid}/maps").read_text()
    finally:
        run.send_signal(signal.SIGINT)
        _, err = run.communicate(timeout=60)
        assert run.returncode == 0, err


def _answers(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=1) as response:
            return response.status == 200
    except OSError:
        return False


def _refusing(scheme: str = "rtsp") -> str:
    """A live camera nobody serves: the process goes on reconnecting to it."""
    return f"door={scheme}://127.0.0.1:{free_port()}/cam"


def test_a_live_run_restarts_itself_under_jemalloc_unless_told_not_to(tmp_path: Path) -> None:
    assert native_memory.jemalloc_library() is not None  # installed with the test packages (.ci/run)
    jemalloc = native_memory.JEMALLOC
    assert jemalloc in _libraries(tmp_path / "auto", "run", _refusing(), "--no-voices")
    assert jemalloc in _libraries(tmp_path / "whep", "run", _refusing("whep"), "--no-voices")  # a WebRTC pull too
    system = _libraries(tmp_path / "system", "run", _refusing(), "--no-voices", STREAMER_PROCESS__ALLOCATOR="system")
    assert jemalloc not in system


def test_the_bus_processes_restart_under_jemalloc_too(tmp_path: Path) -> None:
    """A worker with a live camera and the memory service run for days as a live run does."""
    with NatsServer(tmp_path) as nats:
        bus = ("--bus", nats.url)
        assert native_memory.JEMALLOC in _libraries(tmp_path / "worker", "worker", _refusing(), "--no-voices", *bus)
        assert native_memory.JEMALLOC in _libraries(tmp_path / "service", "memory-service", *bus)
