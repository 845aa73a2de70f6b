"""Per stream: score each finished speech turn once the face analysis has caught up with it.

The voice path hands over turns as they are stored (`add`) and collects the scores (`ready`, or
`finish` at the end of the stream); the frames come from the source's `GreyRing`, the faces from
the analysis' `FaceTrail`. Each frame is developed into its mouths' motion as soon as the analysis
has passed it and leaves the ring then: the grey images are held for the analysis' delay only
(they took ~27 MB a camera when kept as long as a turn may wait), the motion for RING_SECONDS.
A turn whose frames have left that history, or that no face saw, gives none.
"""

from __future__ import annotations

import logging
from collections import deque
from dataclasses import dataclass, field

from ..sources.grey_ring import GreyRing
from .mouths import FaceTrail
from .sync import MAX_GAP_SECONDS, FrameMotion, Patch, TurnAudio, develop, turn_correlations

log = logging.getLogger(__name__)

MIN_TURN_SECONDS = 1.0  # shorter turns hold too few frames for a correlation worth sending
SETTLE_SECONDS = 0.3  # the analysis must have passed a turn's end by this much (an analysed frame after it)
LAG_AFTER_TURNS = 3  # turns scored before the stream's own sound-to-picture lag replaces lag 0
MIN_FRAMES_KEPT = 0.5  # share of a turn whose frames must still be in the ring
FINISH_WAIT_SECONDS = 30.0  # at the end of a stream, how long to wait for the analysis to catch up


@dataclass
class SyncStats:
    turns_scored: int = 0  # turns that gave evidence
    turns_without_face: int = 0  # scored, but no face was visible for most of the turn
    turns_missed: int = 0  # frames gone, or the analysis never caught up
    lag: int = 0  # frames by which the picture trails the sound, as estimated so far
    lag_votes: dict[int, float] = field(default_factory=dict)


class SpeakerSync:
    """Not thread-safe: used by one stream's voice thread only."""

    def __init__(self, frames: GreyRing, faces: FaceTrail) -> None:
        self.frames = frames
        self.faces = faces
        self.stats = SyncStats()
        self._pending: list[TurnAudio] = []
        self._motion: deque[FrameMotion] = deque()  # developed frames, the last frames.seconds of them
        self._patches: dict[int, Patch] = {}  # the last developed frame's mouth patches

    def add(self, turn: TurnAudio) -> None:
        if turn.t_end - turn.t_start >= MIN_TURN_SECONDS:
            self._pending.append(turn)

    def ready(self, now: float) -> list[tuple[int, dict[int, float]]]:
        """Scores of the pending turns the analysis has passed; `now` (the audio's stream time) lets
        turns the analysis will never reach (no video, or far behind) go after the ring's horizon."""
        done, keep = [], []
        until = self.faces.analysed_until
        for turn in self._pending:
            if until >= turn.t_end + SETTLE_SECONDS:
                done.append(turn)
            elif now - turn.t_end > self.frames.seconds:
                self.stats.turns_missed += 1
            else:
                keep.append(turn)
        self._pending = keep
        # A frame's keypoints are interpolated between analysed frames up to MAX_GAP_SECONDS apart:
        # frames are developed once the analysis is that far past them, or a turn to score ends there.
        self._develop(max([until - MAX_GAP_SECONDS, *(t.t_end for t in done)]))
        return [s for s in (self._score(t) for t in done) if s is not None]

    def finish(self, timeout: float = FINISH_WAIT_SECONDS) -> list[tuple[int, dict[int, float]]]:
        """Blocking: the end of the stream; waits (up to `timeout`) for the analysis of the last turns."""
        if self._pending:
            self.faces.wait_until(self._pending[-1].t_end + SETTLE_SECONDS, timeout)
        self._develop(float("inf"))  # no more keypoints will come for the frames still waiting
        done, self._pending = self._pending, []
        return [s for s in (self._score(t) for t in done) if s is not None]

    def _develop(self, until: float) -> None:
        """Frames up to `until` (stream time) leave the ring as their mouths' motion."""
        frames = self.frames.take_until(until)
        if not frames:
            return
        times = [f.t for f in frames]
        sightings = self.faces.sightings(min(times) - MAX_GAP_SECONDS, max(times) + MAX_GAP_SECONDS)
        developed, self._patches = develop(frames, sightings, self._patches)
        history, horizon = self._motion, self.frames.seconds
        for f in developed:
            if history and f.t <= history[-1].t - horizon:
                history.clear()  # the clock went back (a reconnect), as the ring does
            history.append(f)
        while history and history[-1].t - history[0].t > horizon:
            history.popleft()

    def _score(self, turn: TurnAudio) -> tuple[int, dict[int, float]] | None:
        history = self._motion
        if not history or history[0].t > turn.t_start + (1 - MIN_FRAMES_KEPT) * (turn.t_end - turn.t_start):
            self.stats.turns_missed += 1  # too much of the turn has left the history (or there is no video)
            return None
        frames = [f for f in history if turn.t_start <= f.t <= turn.t_end]
        curves = turn_correlations(turn, frames)
        if not curves:
            self.stats.turns_without_face += 1
            return None
        self._vote(curves)
        self.stats.turns_scored += 1
        lag = self.stats.lag
        return turn.turn, {track: curve.get(lag, curve.get(0, 0.0)) for track, curve in curves.items()}

    def _vote(self, curves: dict[int, dict[int, float]]) -> None:
        """The stream's sound-to-picture lag is one for all faces: the lag at which the best-moving
        mouth of each turn correlated most, summed over turns. Choosing it per face would turn
        noise into evidence (the best of five lags of a still face is well above zero)."""
        best = max(curves.values(), key=lambda c: max(c.values()))
        votes = self.stats.lag_votes
        for lag, value in best.items():
            votes[lag] = votes.get(lag, 0.0) + value
        if self.stats.turns_scored + 1 >= LAG_AFTER_TURNS:
            self.stats.lag = int(max(votes, key=lambda lag: (votes[lag], -abs(lag))))

