"""Audio from files, decoded in the video's reader: one clock, damaged and undecodable tracks,
audio-only recordings, back-pressure and drops, and no audio at all when it is not asked for."""

from __future__ import annotations

import asyncio
import logging
import random
from pathlib import Path

import av
import numpy as np
import pytest

from streamer.config import CameraConfig, SourceDefaults
from streamer.errors import SourceError
from streamer.records import AudioChunk, Frame
from streamer.sources import Source, SourceState, open_source
from streamer.sources.state import AudioState

from .conftest import ffmpeg
from .listen import Listener, assert_contiguous, assert_well_formed, onset, peak_hz, samples

pytestmark = pytest.mark.timeout(60)


def source(url: str | Path, *, audio: bool = True, realtime: bool = False, buffer: float = 30.0) -> Source:
    cam = CameraConfig(name="cam", url=str(url))
    src = open_source(cam, SourceDefaults(), realtime=realtime, audio=audio, audio_buffer_seconds=buffer)
    assert isinstance(src, Source)
    return src


def read(src: Source) -> tuple[list[Frame], list[AudioChunk]]:
    """Frames from the loop while a thread takes the audio, as the app and its voice path do."""

    async def frames() -> list[Frame]:
        return [f async for f in src.frames()]

    listener = Listener(src.audio) if src.audio is not None else None
    got = asyncio.run(asyncio.wait_for(frames(), 30))
    return got, listener.join() if listener else []


def damage_audio(clip: Path, out: Path, share: float) -> int:
    """Overwrite `share` of the clip's audio packets with random bytes; returns how many."""
    with av.open(str(clip)) as container:
        spans = [(p.pos, p.size) for p in container.demux(container.streams.audio[0]) if p.size and p.pos is not None]
    rng = random.Random(7)
    data = bytearray(clip.read_bytes())
    hit = [span for span in spans if rng.random() < share]
    for pos, size in hit:
        data[pos : pos + size] = rng.randbytes(size)
    out.write_bytes(bytes(data))
    return len(hit)


def test_audio_and_video_share_one_clock(sync_clip: Path) -> None:
    """The picture turns white at 2.0 s and the tone starts at 2.0 s: both say 2.0, though the audio,
    which starts 0.05 s after the video, is decoded first. A 0.25 s buffer makes the reader wait
    often; a file loses nothing for it."""
    src = source(sync_clip, buffer=0.25)
    frames, chunks = read(src)
    assert len(frames) == 20 and frames[0].t == 0.0
    assert next(f.t for f in frames if f.image.mean() > 128) == pytest.approx(2.0)
    assert_well_formed(chunks)
    assert_contiguous(chunks)
    assert onset(chunks) == pytest.approx(2.0, abs=0.005)
    assert chunks[0].t == pytest.approx(0.05, abs=0.03)  # AAC's priming samples sit just before the offset
    assert chunks[-1].t_end == pytest.approx(4.0, abs=0.05)
    assert src.stats.audio_seconds == pytest.approx(sum(c.seconds for c in chunks))
    assert src.stats.audio_state == AudioState.OK and src.stats.audio_decode_errors == 0
    assert src.stats.audio_dropped_seconds == 0 and src.stats.state == SourceState.ENDED
    # Reading the audio changes nothing about the frames.
    plain, _ = read(source(sync_clip, audio=False))
    assert [(f.index, f.t) for f in plain] == [(f.index, f.t) for f in frames]


def test_the_tone_comes_through_at_16_khz_over_the_whole_file(av_clip: Path) -> None:
    src = source(av_clip)
    _, chunks = read(src)
    assert_contiguous(chunks)
    assert chunks[0].t == 0.0 and chunks[-1].t_end == pytest.approx(3.0, abs=0.05)
    x = samples(chunks)
    assert len(x) == pytest.approx(3 * 16_000, abs=800)
    assert peak_hz(x) == pytest.approx(440, abs=2)


def test_video_without_audio_runs_exactly_as_before(clip: Path) -> None:
    src = source(clip)
    frames, chunks = read(src)
    plain, _ = read(source(clip, audio=False))
    assert [(f.index, f.t) for f in frames] == [(f.index, f.t) for f in plain]
    assert all(np.array_equal(a.image, b.image) for a, b in zip(frames, plain))
    assert chunks == [] and src.audio is not None and src.audio.done
    assert src.stats.audio_state == AudioState.NONE and src.stats.audio_seconds == 0


def test_no_audio_asked_reads_no_audio(av_clip: Path) -> None:
    """What --no-voices gives: no buffer, and the audio stream is never demuxed."""
    src = source(av_clip, audio=False)
    frames, _ = read(src)
    assert len(frames) == 15 and src.audio is None
    stats = src.stats
    assert (stats.audio_state, stats.audio_seconds, stats.audio_decode_errors, stats.audio_dropped_seconds) == (
        AudioState.NONE,
        0.0,
        0,
        0.0,
    )


def test_damaged_audio_packets_are_skipped_and_counted(av_clip: Path, tmp_path: Path) -> None:
    bad = tmp_path / "damaged_audio.mp4"
    damaged = damage_audio(av_clip, bad, 0.3)
    src = source(bad)
    frames, chunks = read(src)
    assert len(frames) == 15 and src.stats.decode_errors == 0, "the video does not notice"
    assert damaged // 2 <= src.stats.audio_decode_errors <= damaged
    assert src.stats.audio_state == AudioState.OK
    assert_well_formed(chunks)
    # A skipped packet leaves a gap in time: the audio after it stays where it belongs.
    assert src.stats.audio_seconds < 2.8 and chunks[-1].t_end == pytest.approx(3.0, abs=0.05)


def test_undecodable_audio_fails_once_and_the_video_goes_on(
    av_clip: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    bad = tmp_path / "garbage_audio.mp4"
    damage_audio(av_clip, bad, 1.0)
    src = source(bad)
    with caplog.at_level(logging.WARNING, logger="streamer.sources"):
        frames, chunks = read(src)
    assert len(frames) == 15 and src.stats.state == SourceState.ENDED and src.stats.last_error is None
    assert chunks == [] and src.stats.audio_state == AudioState.FAILED and src.stats.audio_decode_errors > 0
    warnings = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(warnings) == 1 and "audio track cannot be decoded" in warnings[0]


@pytest.mark.parametrize("ext", ["wav", "flac", "mp3", "m4a", "ogg", "opus"])
def test_audio_only_files(ext: str, tmp_path: Path) -> None:
    path = tmp_path / f"meeting.{ext}"
    ffmpeg("-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000:duration=1.5", str(path))
    src = source(path)
    assert src.duration == pytest.approx(1.5, abs=0.1)
    frames, chunks = read(src)
    assert frames == [] and src.stats.state == SourceState.ENDED and src.stats.frames_decoded == 0
    assert_well_formed(chunks)
    assert_contiguous(chunks)
    assert chunks[0].t == pytest.approx(0.0, abs=0.03)
    assert src.stats.audio_seconds == pytest.approx(1.5, abs=0.06)
    assert peak_hz(samples(chunks)) == pytest.approx(440, abs=2)


def test_audio_only_file_without_audio_asked_is_still_an_error(tmp_path: Path) -> None:
    path = tmp_path / "tone.wav"
    ffmpeg("-f", "lavfi", "-i", "sine=duration=0.5", str(path))
    with pytest.raises(SourceError, match=r"^cannot open video file .*tone\.wav: no video stream$"):
        source(path, audio=False)


def test_no_video_and_no_audio(tmp_path: Path) -> None:
    subs = tmp_path / "subs.srt"
    subs.write_text("1\n00:00:00,000 --> 00:00:01,000\nhello\n")
    path = tmp_path / "subtitles_only.mkv"
    ffmpeg("-i", str(subs), str(path))
    with pytest.raises(SourceError, match=r"^cannot open media file .*\.mkv: no video and no audio stream$"):
        source(path)


def test_not_a_media_file(tmp_path: Path) -> None:
    fake = tmp_path / "notes.wav"
    fake.write_text("this is not a recording\n" * 50)
    with pytest.raises(SourceError) as err:
        source(fake)
    message = str(err.value)
    assert "\n" not in message and message.startswith(f"cannot open media file {fake}: ")


def test_paced_file_drops_the_oldest_audio_nobody_reads(av_clip: Path) -> None:
    """Paced like a camera, a file's audio does not wait for a voice path that is not there; nor do its frames."""
    src = source(av_clip, realtime=True, buffer=0.5)

    async def frames() -> list[Frame]:
        return [f async for f in src.frames()]

    got = asyncio.run(asyncio.wait_for(frames(), 30))
    assert src.audio is not None
    assert len(got) == 15 and src.stats.dropped == 0
    assert src.audio.seconds <= 0.5
    assert src.stats.audio_dropped_seconds == pytest.approx(src.stats.audio_seconds - src.audio.seconds, abs=1e-6)
    assert src.stats.audio_dropped_seconds >= 2.4
