"""The timestamp sampler and the stream clock, on timestamp sequences."""

from __future__ import annotations

import numpy as np
import pytest

from streamer.sources.clock import StreamClock
from streamer.sources.sampler import TimestampSampler


def taken(fps: float, times: list[float]) -> list[float]:
    sampler = TimestampSampler(fps)
    return [t for t in times if sampler.take(t)]


@pytest.mark.parametrize("in_fps", [25, 30, 29.97, 7, 60])
def test_constant_rate_input_gives_target_rate(in_fps: float) -> None:
    times = [i / in_fps for i in range(int(10 * in_fps))]
    out = taken(5, times)
    assert len(out) == pytest.approx(50, abs=1)
    gaps = np.diff(out)
    assert gaps.min() >= 0.2 - 1 / in_fps - 1e-6 and gaps.max() <= 0.2 + 1 / in_fps + 1e-6


def test_slower_input_keeps_every_frame() -> None:
    times = [i / 3 for i in range(30)]
    assert taken(5, times) == times


def test_variable_frame_rate() -> None:
    rng = np.random.default_rng(0)
    times = list(np.cumsum(rng.uniform(0.01, 0.08, 400)))  # 10-100 fps jitter, ~18 s
    out = taken(5, times)
    assert len(out) == pytest.approx(times[-1] * 5, abs=2)
    assert np.diff(out).min() >= 0.2 - 0.08


def test_jump_forward_does_not_burst() -> None:
    times = [i / 25 for i in range(25)] + [100 + i / 25 for i in range(25)]
    out = taken(5, times)
    after = [t for t in out if t >= 100]
    assert len(after) == 5
    assert np.diff(after).min() >= 0.2 - 1e-6


def test_jump_back_restarts() -> None:
    times = [10 + i / 25 for i in range(25)] + [i / 25 for i in range(25)]
    out = taken(5, times)
    assert len(out) == 10 and out[5] == 0.0


def test_clock_starts_at_zero_and_follows_pts() -> None:
    clock = StreamClock(live=False)
    ts = [clock.t(1.5 + i * 0.04, 0.0, 0.04) for i in range(5)]
    assert ts == pytest.approx([0, 0.04, 0.08, 0.12, 0.16])


def test_clock_fills_missing_pts_with_the_frame_step() -> None:
    clock = StreamClock(live=True)
    ts = [clock.t(pts, 1000.0 + i * 0.04, 0.04) for i, pts in enumerate([None, None, 7.08, 7.12, None, 7.2])]
    assert ts == pytest.approx([0, 0.04, 0.08, 0.12, 0.16, 0.2])


def test_clock_stays_monotonic_across_reconnects() -> None:
    clock = StreamClock(live=True)
    first = [clock.t(50 + i * 0.04, 1000 + i * 0.04, 0.04) for i in range(10)]  # ends at t 0.36, wall 1000.36
    clock.new_segment()
    second = [clock.t(pts, 1003.36 + i * 0.04, 0.04) for i, pts in enumerate([None, 0.0, 0.04])]  # back 3 s later
    assert second == pytest.approx([3.36, 3.40, 3.44])
    assert np.all(np.diff(first + second) > 0)


def test_clock_rides_over_pts_going_back_or_leaping_ahead() -> None:
    clock = StreamClock(live=True)
    pts = [0, 0.04, 0.08, 0.02, 0.06, 3600.0, 3600.04]
    ts = [clock.t(p, 1000 + i * 0.04, 0.04) for i, p in enumerate(pts)]
    assert ts == pytest.approx([0, 0.04, 0.08, 0.12, 0.16, 0.2, 0.24])


def test_clock_keeps_a_gap_in_a_file() -> None:
    clock = StreamClock(live=False)
    ts = [clock.t(p, 0.0, 0.04) for p in [0, 0.04, 10.0, 10.04]]
    assert ts == pytest.approx([0, 0.04, 10.0, 10.04])
