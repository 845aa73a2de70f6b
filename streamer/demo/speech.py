"""Real recorded speech for the demo and the tests: a two-person conversation with its speaker turns
and transcript (see media/NOTICE.md for where it comes from)."""

from __future__ import annotations

import wave
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

MEDIA = Path(__file__).parent / "media"


@dataclass(frozen=True)
class SpokenTurn:
    start: float  # seconds
    end: float
    speaker: str
    text: str | None = None


@dataclass(frozen=True)
class Conversation:
    samples: npt.NDArray[np.float32]  # mono, [-1, 1]
    rate: int
    turns: list[SpokenTurn]  # who spoke when (RTTM), in time order; turns may overlap
    transcript: list[SpokenTurn]  # what was said (STM), in time order

    @property
    def duration(self) -> float:
        return len(self.samples) / self.rate

    @property
    def speakers(self) -> list[str]:
        return sorted({t.speaker for t in self.turns})


def read_wav(path: str | Path) -> tuple[npt.NDArray[np.float32], int]:
    """A 16-bit PCM WAV file as float samples (channels averaged) and its sample rate."""
    with wave.open(str(path)) as w:
        if w.getsampwidth() != 2:
            raise ValueError(f"{path}: expected 16-bit PCM")
        pcm = np.frombuffer(w.readframes(w.getnframes()), np.int16).reshape(-1, w.getnchannels())
        return (pcm.astype(np.float32) / 32768.0).mean(axis=1), w.getframerate()


def parse_rttm(text: str) -> list[SpokenTurn]:
    """Speaker turns from RTTM text (the NIST "who spoke when" format), in time order."""
    turns = []
    for line in text.splitlines():
        fields = line.split()
        if fields and fields[0] == "SPEAKER":
            start, length = float(fields[3]), float(fields[4])
            turns.append(SpokenTurn(start, start + length, fields[7]))
    return sorted(turns, key=lambda t: t.start)


def _stm(path: Path) -> list[SpokenTurn]:
    lines = []
    for line in path.read_text().splitlines():
        _, _, speaker, start, end, *words = line.split()
        lines.append(SpokenTurn(float(start), float(end), speaker, " ".join(words)))
    return sorted(lines, key=lambda t: t.start)


def load_conversation() -> Conversation:
    samples, rate = read_wav(MEDIA / "conversation.wav")
    return Conversation(samples, rate, parse_rttm((MEDIA / "conversation.rttm").read_text()), _stm(MEDIA / "conversation.stm"))


def floor_holders(turns: list[SpokenTurn], min_overlap_turn: float = 0.6) -> list[SpokenTurn]:
    """Who holds the floor from one change of speaker to the next: a short remark inside another
    person's turn (a backchannel) does not take it. Used to cut between talking heads."""
    spans: list[SpokenTurn] = []
    for turn in turns:
        inside = spans and turn.end <= spans[-1].end and turn.end - turn.start < min_overlap_turn
        if inside:
            continue
        if spans and spans[-1].speaker == turn.speaker:
            spans[-1] = SpokenTurn(spans[-1].start, max(spans[-1].end, turn.end), turn.speaker)
            continue
        if spans:  # the floor changes hands where the new turn starts
            spans[-1] = SpokenTurn(spans[-1].start, turn.start, spans[-1].speaker)
        spans.append(turn)
    return spans
