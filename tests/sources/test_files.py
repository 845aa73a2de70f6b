"""Video files: sampling by timestamp, pacing, back-pressure, and one-line errors for bad files."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import av
import numpy as np
import pytest

from streamer.config import CameraConfig, SourceDefaults
from streamer.errors import SourceError
from streamer.records import Frame
from streamer.scene import scene_thumbnail
from streamer.sources import Source, SourceState, open_source

from .conftest import H264, ffmpeg, moving

pytestmark = pytest.mark.timeout(60)


def source(url: str | Path, *, fps: float | None = None, realtime: bool = False, **defaults: float) -> Source:
    return open_source(CameraConfig(name="cam", url=str(url), fps=fps), SourceDefaults(**defaults), realtime=realtime)


async def collect(src: Source) -> list[Frame]:
    return [f async for f in src.frames()]


def read_all(src: Source) -> list[Frame]:
    return asyncio.run(asyncio.wait_for(collect(src), 30))


def assert_one_line_error(err: pytest.ExceptionInfo[SourceError], *words: str) -> None:
    message = str(err.value)
    assert "\n" not in message
    for word in words:
        assert word in message


def test_samples_five_fps_by_timestamp(clip: Path) -> None:
    src = source(clip)
    frames = read_all(src)
    ts = [f.t for f in frames]
    assert len(frames) == 15
    assert ts[0] == 0.0
    assert np.diff(ts) == pytest.approx([0.2] * 14)
    assert [f.index for f in frames] == list(range(0, 75, 5))
    assert all(f.image.shape == (240, 320, 3) and f.image.dtype == np.uint8 and f.stream == "cam" for f in frames)
    assert src.stats.frames_decoded == 75 and src.stats.frames_sampled == 15
    assert src.stats.dropped == 0 and src.stats.decode_errors == 0
    assert src.stats.state == SourceState.ENDED
    assert src.duration == pytest.approx(3.0, abs=0.1)
    assert not src.is_live


def test_each_sampled_frame_comes_with_its_scene_thumbnail(clip: Path) -> None:
    frames = read_all(source(clip))
    for f in frames:
        assert f.thumbnail is not None and np.array_equal(f.thumbnail, scene_thumbnail(f.image))


def test_camera_fps_overrides_default(clip: Path) -> None:
    frames = read_all(source(clip, fps=10))
    gaps = np.diff([f.t for f in frames])
    assert len(frames) == 30
    assert gaps.mean() == pytest.approx(0.1, abs=0.005)
    assert np.all(np.abs(gaps - 0.1) <= 0.04 / 2 + 1e-6)  # on the 0.1 s grid, to the nearest 25 fps frame


def test_frames_never_analysed_are_not_decoded(media: Path) -> None:
    """A recording with B-frames (as cameras and phones write them) sampled at 5 of 25 fps: the
    frames nothing refers to are skipped unless sampled, so the sampled frames stay the same."""
    path = media / "bframes.mp4"
    ffmpeg(*moving(3), "-c:v", "libx264", "-preset", "veryfast", "-bf", "3", "-g", "50", "-pix_fmt", "yuv420p", str(path))
    with av.open(str(path)) as c:  # every frame, as a reference
        pictures = {round(float(f.time), 3): f.to_ndarray(format="bgr24") for f in c.decode(video=0)}
    src = source(path)
    frames = read_all(src)
    assert len(frames) == 15
    assert src.stats.frames_decoded < 50  # of 75
    assert np.diff([f.t for f in frames]) == pytest.approx([0.2] * 14)
    for f in frames:
        assert np.array_equal(f.image, pictures[round(f.t, 3)])
    every = source(path, fps=25)  # nothing to skip when every frame is analysed
    assert len(read_all(every)) == 75 and every.stats.frames_decoded == 75


def test_image_is_bgr(media: Path) -> None:
    red = media / "red.mp4"
    ffmpeg("-f", "lavfi", "-i", "color=c=red:size=64x64:rate=25:duration=0.4", *H264, str(red))
    b, g, r = read_all(source(red))[0].image.reshape(-1, 3).mean(axis=0)
    assert r > 200 and g < 40 and b < 40


def test_back_pressure_never_drops(clip: Path) -> None:
    async def slow() -> list[Frame]:
        src = source(clip, queue_size=1)
        frames = []
        async for f in src.frames():
            frames.append(f)
            await asyncio.sleep(0.02)
        assert src.stats.dropped == 0
        return frames

    assert len(asyncio.run(slow())) == 15


def test_decoding_never_blocks_the_loop(clip: Path) -> None:
    async def run() -> float:
        worst = 0.0
        done = asyncio.Event()

        async def ticker() -> None:
            nonlocal worst
            while not done.is_set():
                t0 = time.monotonic()
                await asyncio.sleep(0.005)
                worst = max(worst, time.monotonic() - t0 - 0.005)

        tick = asyncio.create_task(ticker())
        await collect(source(clip, fps=25))
        done.set()
        await tick
        return worst

    assert asyncio.run(run()) < 0.1


def test_realtime_is_paced_by_timestamps(clip: Path) -> None:
    t0 = time.monotonic()
    frames = read_all(source(clip, realtime=True))
    assert len(frames) == 15
    assert time.monotonic() - t0 >= 0.8 * frames[-1].t


def test_states_reach_the_callback_on_the_loop(clip: Path) -> None:
    async def run() -> list[SourceState]:
        loop = asyncio.get_running_loop()
        seen: list[SourceState] = []

        def on_state(name: str, state: SourceState) -> None:
            assert name == "cam" and asyncio.get_running_loop() is loop
            seen.append(state)

        src = source(clip)
        src.on_state = on_state
        await collect(src)
        await asyncio.sleep(0.05)  # let the last callback run
        return seen

    assert asyncio.run(run()) == [SourceState.LIVE, SourceState.ENDED]


def test_close_midway_stops_promptly(clip: Path) -> None:
    async def run() -> Source:
        src = source(clip, realtime=True)
        async for _ in src.frames():
            t0 = time.monotonic()
            await src.close()
            assert time.monotonic() - t0 < 1.0
        return src

    assert asyncio.run(run()).stats.state == SourceState.STOPPED


def test_break_out_of_the_loop_closes(clip: Path) -> None:
    async def run() -> Source:
        src = source(clip, queue_size=1)
        frames = src.frames()
        async for _ in frames:
            break
        await frames.aclose()  # type: ignore[attr-defined]
        return src

    assert asyncio.run(run()).stats.state == SourceState.STOPPED


def test_frames_can_be_iterated_once(clip: Path) -> None:
    src = source(clip)
    read_all(src)
    with pytest.raises(RuntimeError, match="only once"):
        read_all(src)


def test_corrupt_bytes_midway_are_skipped_and_counted(clip: Path, media: Path) -> None:
    data = bytearray(clip.read_bytes())
    third = len(data) // 3
    for off in range(third, third + 4000, 7):
        data[off] ^= 0xFF
    bad = media / "corrupt.mp4"
    bad.write_bytes(bytes(data))
    src = source(bad)
    frames = read_all(src)
    assert src.stats.decode_errors >= 1
    assert 10 <= len(frames) <= 15 and frames[-1].t > 2.5
    assert src.stats.state == SourceState.ENDED


def test_missing_file() -> None:
    with pytest.raises(SourceError, match=r"^video file not found: nowhere\.mp4$"):
        source("nowhere.mp4")


def test_directory_is_not_a_video(tmp_path: Path) -> None:
    with pytest.raises(SourceError, match="not a video file"):
        source(tmp_path)


def test_text_file_named_mp4(tmp_path: Path) -> None:
    fake = tmp_path / "notes.mp4"
    fake.write_text("this is not a video\n" * 50)
    with pytest.raises(SourceError) as err:
        source(fake)
    assert_one_line_error(err, "cannot open video file", str(fake), "Invalid data")


def test_truncated_mp4(clip: Path, tmp_path: Path) -> None:
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(clip.read_bytes()[: clip.stat().st_size // 2])  # the index (moov) is at the end
    with pytest.raises(SourceError) as err:
        source(cut)
    assert_one_line_error(err, "cannot open video file", str(cut))


def test_audio_only_file(tmp_path: Path) -> None:
    audio = tmp_path / "tone.m4a"
    ffmpeg("-f", "lavfi", "-i", "sine=duration=0.5", str(audio))
    with pytest.raises(SourceError) as err:
        source(audio)
    assert_one_line_error(err, str(audio), "no video stream")


def test_file_broken_after_open_raises_before_any_frame(clip: Path, tmp_path: Path) -> None:
    path = tmp_path / "replaced.mp4"
    path.write_bytes(clip.read_bytes())
    src = source(path)
    path.write_text("gone\n")
    frames: list[Frame] = []

    async def run() -> None:
        async for f in src.frames():
            frames.append(f)

    with pytest.raises(SourceError) as err:
        asyncio.run(asyncio.wait_for(run(), 30))
    assert_one_line_error(err, "cannot open video file", str(path))
    assert frames == [] and src.stats.state == SourceState.ENDED and src.stats.last_error == str(err.value)


@pytest.mark.parametrize("url", ["foo://x", "file:///a.mp4", "rtmp://host/live"])
def test_unsupported_scheme(url: str) -> None:
    with pytest.raises(SourceError) as err:
        source(url)
    assert str(err.value) == (
        f"unsupported source {url!r}: expected a video file, rtsp://, rtsps://, http(s):// or /dev/videoN"
    )


@pytest.mark.parametrize("url", ["rtsp://h/x", "RTSPS://h/x", "http://h/x.m3u8", "udp://@:5000", "srt://h:1", "/dev/video0"])
def test_live_urls(url: str) -> None:
    src = source(url)
    assert src.is_live and src.duration is None and src.stats.state == SourceState.CONNECTING
