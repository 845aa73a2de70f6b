"""AudioBuffer: bounded by seconds, drop-oldest for live sources, back-pressure for files, a clean end."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from streamer.records import SAMPLE_RATE, AudioChunk
from streamer.sources.audio_buffer import AudioBuffer

pytestmark = pytest.mark.timeout(20)


def chunk(t: float, seconds: float = 0.5) -> AudioChunk:
    return AudioChunk("mic", t, 0.0, np.full(round(seconds * SAMPLE_RATE), t, np.float32))


def test_live_drops_the_oldest_and_counts_seconds() -> None:
    buf = AudioBuffer(1.0, drop_oldest=True)
    for i in range(5):
        assert buf.put(chunk(i * 0.5))
    assert buf.dropped_seconds == pytest.approx(1.5) and buf.seconds == pytest.approx(1.0)
    assert [c.t for c in (buf.get(0), buf.get(0))] == [1.5, 2.0]  # type: ignore[union-attr]
    assert buf.get(0) is None and not buf.done


def test_file_put_waits_for_room_and_loses_nothing() -> None:
    buf = AudioBuffer(1.0, drop_oldest=False)
    assert buf.put(chunk(0.0)) and buf.put(chunk(0.5))
    third_in = threading.Event()

    def reader() -> None:
        buf.put(chunk(1.0))
        third_in.set()

    thread = threading.Thread(target=reader)
    thread.start()
    assert not third_in.wait(0.2), "a full buffer makes a file's reader wait"
    assert buf.get(1).t == 0.0  # type: ignore[union-attr]
    assert third_in.wait(5)
    thread.join()
    assert [buf.get(0).t, buf.get(0).t] == [0.5, 1.0]  # type: ignore[union-attr]
    assert buf.dropped_seconds == 0


def test_an_oversized_chunk_still_gets_into_an_empty_buffer() -> None:
    buf = AudioBuffer(0.2, drop_oldest=False)
    assert buf.put(chunk(0.0, seconds=1.0))
    assert buf.get(0) is not None


def test_close_releases_a_waiting_reader() -> None:
    buf = AudioBuffer(0.5, drop_oldest=False)
    buf.put(chunk(0.0))
    result: list[bool] = []
    thread = threading.Thread(target=lambda: result.append(buf.put(chunk(0.5))))
    thread.start()
    thread.join(0.2)
    assert thread.is_alive()
    buf.close()
    thread.join(5)
    assert result == [False] and not buf.put(chunk(1.0))


def test_get_times_out_then_ends_once_closed_and_drained() -> None:
    buf = AudioBuffer(5.0, drop_oldest=True)
    assert buf.get(0.05) is None and not buf.done
    buf.put(chunk(0.0))
    buf.close()
    assert not buf.done, "what was put before the end is still delivered"
    assert buf.get(0) is not None
    assert buf.done and buf.get(10) is None  # returns at once: no waiting on a finished buffer


def test_a_waiting_consumer_wakes_on_a_chunk() -> None:
    buf = AudioBuffer(5.0, drop_oldest=True)
    got: list[AudioChunk | None] = []
    thread = threading.Thread(target=lambda: got.append(buf.get(5)))
    thread.start()
    buf.put(chunk(3.0))
    thread.join(5)
    assert got and got[0] is not None and got[0].t == 3.0


def test_bounds_must_be_positive() -> None:
    with pytest.raises(ValueError, match="max_seconds"):
        AudioBuffer(0, drop_oldest=True)
