"""Real recorded speech for tests: the two-person conversation the package ships (the pyannote-audio
sample, with its RTTM; see streamer/demo/media/NOTICE.md), and sentences spoken by festival's voices
(each recorded from a different real person). Everything comes back as 16 kHz mono float32 or as wav
files; synthesis is cached in $STREAMER_TEST_CACHE (default: .cache/test-media in the repository,
git-ignored)."""

from __future__ import annotations

import hashlib
import os
import subprocess
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import av
import numpy as np
import numpy.typing as npt

from streamer.demo.speech import MEDIA
from streamer.demo.speech import SpokenTurn as SpeakerSpan
from streamer.demo.speech import parse_rttm as read_rttm

SAMPLE_RATE = 16_000
FESTIVAL_VOICES = ("kal_diphone", "ked_diphone", "cmu_us_slt_arctic_hts")


@dataclass(frozen=True)
class Recording:
    samples: npt.NDArray[np.float32]  # (n,) 16 kHz mono
    spans: list[SpeakerSpan]  # reference speaker time (RTTM); may overlap

    @property
    def speakers(self) -> list[str]:
        return sorted({s.speaker for s in self.spans})


def cache_dir() -> Path:
    default = Path(__file__).resolve().parents[2] / ".cache" / "test-media"
    path = Path(os.environ.get("STREAMER_TEST_CACHE", default))
    path.mkdir(parents=True, exist_ok=True)
    return path


def read_audio(path: Path) -> npt.NDArray[np.float32]:
    """Any file PyAV decodes, as 16 kHz mono float32."""
    resampler = av.AudioResampler(format="flt", layout="mono", rate=SAMPLE_RATE)
    parts = []
    with av.open(str(path)) as container:
        for frame in container.decode(audio=0):
            parts += [f.to_ndarray().reshape(-1) for f in resampler.resample(frame)]
    parts += [f.to_ndarray().reshape(-1) for f in resampler.resample(None)]
    return np.concatenate(parts).astype(np.float32)


def write_wav(path: Path, samples: npt.NDArray[np.float32]) -> Path:
    """16-bit PCM mono wav at 16 kHz."""
    pcm = (np.clip(samples, -1, 1) * 32767).astype("<i2")
    with av.open(str(path), "w", format="wav") as container:
        stream = container.add_stream("pcm_s16le", rate=SAMPLE_RATE, layout="mono")
        frame = av.AudioFrame.from_ndarray(pcm.reshape(1, -1), format="s16", layout="mono")
        frame.sample_rate = SAMPLE_RATE
        for packet in stream.encode(frame):
            container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
    return path


def pyannote_sample_files() -> tuple[Path, Path]:
    """The conversation's wav (30 s, two real speakers) and its RTTM."""
    return MEDIA / "conversation.wav", MEDIA / "conversation.rttm"


def pyannote_sample() -> Recording:
    wav, rttm = pyannote_sample_files()
    return Recording(read_audio(wav), read_rttm(rttm.read_text()))


def festival_wav(voice: str, text: str) -> Path:
    """A wav of `text` spoken by one of festival's voices (FESTIVAL_VOICES), synthesised once."""
    key = hashlib.sha256(f"{voice}\n{text}".encode()).hexdigest()[:16]
    path = cache_dir() / "festival" / f"{voice}-{key}.wav"
    if not path.is_file():
        path.parent.mkdir(exist_ok=True)
        raw = path.with_suffix(".raw.wav")
        subprocess.run(
            ["text2wave", "-eval", f"(voice_{voice})", "-o", str(raw)], input=text.encode(), check=True, capture_output=True
        )
        write_wav(path, read_audio(raw))  # festival voices differ in rate: store all at 16 kHz
        raw.unlink()
    return path


def festival_sentence(voice: str, text: str) -> npt.NDArray[np.float32]:
    return read_audio(festival_wav(voice, text))


def speaker_of(turn: Mapping[str, Any], truth: list[SpeakerSpan]) -> tuple[str | None, float]:
    """The reference speaker who talks most during a turn, and how much of the turn that is."""
    overlap: Counter[str] = Counter()
    for ref in truth:
        overlap[ref.speaker] += max(0.0, min(turn["t_end"], ref.end) - max(turn["t_start"], ref.start))
    if not overlap:
        return None, 0.0
    speaker, seconds = overlap.most_common(1)[0]
    return speaker, seconds / max(turn["t_end"] - turn["t_start"], 1e-9)
