"""The face track spans that speech turns are weighed against (memory.evidence) keep exactly the
tracks seen within SPAN_KEEP_SECONDS of a stream's latest face, though expiry looks only at the
tracks due to go."""

from __future__ import annotations

import numpy as np

from memory.evidence import SPAN_KEEP_SECONDS, _Spans


def test_spans_keep_exactly_the_tracks_seen_within_the_window() -> None:
    rng = np.random.default_rng(3)
    spans = _Spans()
    truth: dict[int, list[float]] = {}
    t = latest = 0.0
    for _ in range(5000):
        t += float(rng.exponential(0.5))
        # tracks come back after gaps shorter and longer than the window; faces may arrive late
        track = int(rng.integers(40))
        seen_at = t - float(rng.uniform(0, 20)) if rng.random() < 0.1 else t
        spans.see(track, seen_at)
        span = truth.setdefault(track, [seen_at, seen_at])
        span[0], span[1] = min(span[0], seen_at), max(span[1], seen_at)
        latest = max(latest, seen_at)
        truth = {k: v for k, v in truth.items() if v[1] >= latest - SPAN_KEEP_SECONDS}
        if rng.random() < 0.01:  # a forgotten person's track goes at once (Evidence.forget)
            gone = int(rng.integers(40))
            spans.tracks.pop(gone, None)
            truth.pop(gone, None)
        spans.expire()
        assert spans.tracks == truth
    assert len(spans.by_last) <= 2 * len(truth) + 40  # one entry per track, a few stale ones at most
