"""Keeping native memory in check over days: glibc's malloc arenas and freed pages.

Most of a run's memory is native (onnxruntime, CTranslate2, FFmpeg), allocated from many threads. glibc
gives every thread that contends for the heap an arena of its own, up to eight per core, and an arena
keeps the pages it once used: with a decoder and a voice thread per camera RSS grew by tens of MB per
thread. Two arenas, and handing freed pages back now and then, keep it flat (BENCHMARKS.md, Soak).
Elsewhere than glibc these do nothing.

Even so RSS grew by ~38 MB an hour on two live cameras under glibc (+7.2% over the last 45 minutes
of an hour) while the memory in use stayed about flat; under jemalloc the same hour grew +3.5% from
a like level. A live run, a worker and the memory service therefore start themselves again under
jemalloc where the library is installed (`process.allocator`), before anything is loaded.
"""

from __future__ import annotations

import ctypes
import logging
import os
import sys
import sysconfig
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

log = logging.getLogger(__name__)

M_ARENA_MAX = -8  # mallopt parameter number, from glibc's malloc.h
ARENAS = 2
TRIM_EVERY_SECONDS = 30.0
JEMALLOC = "libjemalloc.so.2"  # Debian/Ubuntu: libjemalloc2; Fedora: jemalloc
RESTARTED = "STREAMER_UNDER_JEMALLOC"  # set in the restarted process: it never restarts twice


def _libc() -> ctypes.CDLL | None:
    # The process's own symbols (dlopen(NULL)) already hold the C library's: find_library("c") would
    # spawn ldconfig at every start.
    try:
        libc = ctypes.CDLL(None)
        libc.mallopt, libc.malloc_trim  # noqa: B018 - both are glibc's own, absent from musl and macOS
    except (OSError, AttributeError):
        return None
    return libc


_LIBC = _libc()


def cap_arenas() -> None:
    """Call before the threads start: arenas made until then stay. MALLOC_ARENA_MAX, when set, wins."""
    if _LIBC is None or "MALLOC_ARENA_MAX" in os.environ:
        return
    if not _LIBC.mallopt(M_ARENA_MAX, ARENAS):
        log.debug("mallopt(M_ARENA_MAX) refused")


def release_free_memory() -> None:
    """Blocking (milliseconds): returns the heap's free pages to the system (glibc's malloc_trim)."""
    if _LIBC is not None:
        _LIBC.malloc_trim(0)


def keep_trimming(stop: threading.Event, every: float = TRIM_EVERY_SECONDS) -> threading.Thread:
    """A thread handing freed pages back every `every` seconds until `stop` is set (the caller joins it)."""

    def run() -> None:
        while not stop.wait(every):
            release_free_memory()

    thread = threading.Thread(target=run, name="malloc-trim", daemon=True)
    thread.start()
    return thread


@contextmanager
def kept_flat(restart_args: Sequence[str] | None, *, allocator: str, live: bool) -> Iterator[None]:
    """Around the whole of a command that may run for days, before it imports anything heavy: the
    arenas capped, a live one restarted under jemalloc (`restart_args`: the command line, where this
    process is the `streamer` program; allocator: process.allocator), freed pages handed back."""
    cap_arenas()
    if live and restart_args is not None and allocator == "auto":
        restart_under_jemalloc(restart_args)  # returns where it cannot
    stop = threading.Event()
    trimmer = keep_trimming(stop)
    try:
        yield
    finally:
        stop.set()
        trimmer.join()


def jemalloc_library() -> str | None:
    """The installed jemalloc, looked for in the usual folders (no ldconfig call, no loading)."""
    multiarch = sysconfig.get_config_var("MULTIARCH") or ""
    for folder in (f"/usr/lib/{multiarch}", "/usr/lib64", "/usr/lib", "/usr/local/lib"):
        path = os.path.join(folder, JEMALLOC)
        if os.path.isfile(path):
            return path
    return None


def under_jemalloc() -> bool:
    try:
        return hasattr(ctypes.CDLL(None), "mallctl")  # jemalloc's own entry point, there once preloaded
    except OSError:
        return False


def restart_under_jemalloc(args: Sequence[str]) -> None:
    """Replaces this process with `python -m streamer ARGS` under jemalloc (same pid, same
    environment plus LD_PRELOAD); returns where jemalloc is missing, already in use or was tried."""
    library = jemalloc_library()
    if library is None or RESTARTED in os.environ or under_jemalloc():
        return
    preload = " ".join(filter(None, (library, os.environ.get("LD_PRELOAD"))))
    env = {**os.environ, "LD_PRELOAD": preload, RESTARTED: "1"}
    for stream in (sys.stdout, sys.stderr):
        stream.flush()
    log.debug("restarting under %s", library)
    os.execve(sys.executable, [sys.executable, "-m", "streamer", *args], env)
