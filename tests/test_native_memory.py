"""The glibc calls that keep a days-long run's native memory flat are found and work, and elsewhere
they are left alone rather than failing; a live run restarts itself under jemalloc (installed by the
test packages), unless told not to."""

import os
import platform
import signal
import subprocess
import sys
import time
from pathlib import Path

from support.ports import free_port

from streamer import native_memory

REPO = Path(__file__).resolve().parents[1]
GLIBC = platform.libc_ver()[0] == "glibc"


def test_glibc_calls_are_found_in_the_process_or_left_alone() -> None:
    if not GLIBC:
        assert native_memory._LIBC is None
        native_memory.cap_arenas()  # does nothing, raises nothing
        return
    assert native_memory._LIBC is not None
    assert native_memory._LIBC.mallopt(native_memory.M_ARENA_MAX, native_memory.ARENAS) == 1
    assert native_memory._LIBC.malloc_trim(0) in (0, 1)


def _live_run_libraries(folder: Path, scheme: str = "rtsp", **env: str) -> str:
    """The shared objects mapped into `streamer run` (the program itself) on a live camera, one that
    refuses, so that the run goes on reconnecting, once its memory is open."""
    folder.mkdir()
    db = folder / "memory.db"
    camera = f"door={scheme}://127.0.0.1:{free_port()}/cam"
    clean = {k: v for k, v in os.environ.items() if k not in ("LD_PRELOAD", native_memory.RESTARTED)}
    run = subprocess.Popen(
        [sys.executable, "-m", "streamer", "run", camera, "-q", "--no-mqtt", "--no-voices", "--db", str(db)],
        cwd=REPO,
        env={**clean, **env},
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 60
        while not db.exists() and time.monotonic() < deadline and run.poll() is None:
            time.sleep(0.1)
        assert run.poll() is None and db.exists()
        return Path(f"/proc/{run.pid}/maps").read_text()
    finally:
        run.send_signal(signal.SIGINT)
        _, err = run.communicate(timeout=60)
        assert run.returncode == 0, err


def test_a_live_run_restarts_itself_under_jemalloc_unless_told_not_to(tmp_path: Path) -> None:
    assert native_memory.jemalloc_library() is not None  # installed with the test packages (.ci/run)
    assert native_memory.JEMALLOC in _live_run_libraries(tmp_path / "auto")
    assert native_memory.JEMALLOC in _live_run_libraries(tmp_path / "whep", "whep")  # a WebRTC pull is live too
    assert native_memory.JEMALLOC not in _live_run_libraries(tmp_path / "system", STREAMER_PROCESS__ALLOCATOR="system")
