"""The glibc calls that keep a days-long run's native memory flat are found and work, and elsewhere
they are left alone rather than failing."""

import platform

from streamer import native_memory


def test_glibc_calls_are_found_in_the_process_or_left_alone() -> None:
    if platform.libc_ver()[0] != "glibc":
        assert native_memory._LIBC is None
        native_memory.cap_arenas()  # does nothing, raises nothing
        return
    assert native_memory._LIBC is not None
    assert native_memory._LIBC.mallopt(native_memory.M_ARENA_MAX, native_memory.ARENAS) == 1
    assert native_memory._LIBC.malloc_trim(0) in (0, 1)
