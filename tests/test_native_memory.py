"""The glibc calls that keep a days-long run's native memory flat are found and work."""

import platform

import pytest

from streamer import native_memory


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="mallopt and malloc_trim are glibc's")
def test_glibc_calls_are_found_in_the_process() -> None:
    assert native_memory._LIBC is not None
    assert native_memory._LIBC.mallopt(native_memory.M_ARENA_MAX, native_memory.ARENAS) == 1
    assert native_memory._LIBC.malloc_trim(0) in (0, 1)
