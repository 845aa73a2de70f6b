"""Keeping native memory in check over days: glibc's malloc arenas and freed pages.

Most of a run's memory is native (onnxruntime, CTranslate2, FFmpeg), allocated from many threads. glibc
gives every thread that contends for the heap an arena of its own, up to eight per core, and an arena
keeps the pages it once used: with a decoder and a voice thread per camera RSS grew by tens of MB per
thread. Two arenas, and handing freed pages back now and then, keep it flat (BENCHMARKS.md, Soak).
Elsewhere than glibc these do nothing.
"""

from __future__ import annotations

import ctypes
import logging
import os
import threading

log = logging.getLogger(__name__)

M_ARENA_MAX = -8  # mallopt parameter number, from glibc's malloc.h
ARENAS = 2
TRIM_EVERY_SECONDS = 30.0


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
