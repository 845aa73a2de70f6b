"""WHIP pushes into a running App from real aiortc peers: auth, names, ends, audio, and identities."""

from __future__ import annotations

import asyncio
import socket
import time
from collections import Counter
from pathlib import Path

import aiohttp
import pytest

from memory import Memory
from streamer.app import App
from streamer.errors import StreamerError
from streamer.demo.cast import Person
from streamer.demo.compose import Appearance, render_video
from streamer.faces.models import ModelPack
from streamer.sources import AudioState, SourceState
from streamer.webrtc.peer import new_peer
from streamer.whip_server import WhipServer
from support.identities import faces_by_person

from .conftest import TOKEN, app_config, gathered_offer, push_file, running_app, until

A, B = 0, 1
SCRIPT = [Appearance(A, 0, 6, 0.3), Appearance(B, 1.5, 7.5, 0.7)]  # both in view from 2 s to 5.5 s
WIDTH = 640


@pytest.fixture(scope="module")
def two_people(cast: list[Person], media_dir: Path) -> Path:
    path = media_dir / "whip_two_people.mp4"
    render_video(path, cast, SCRIPT, fps=10)  # the pipeline samples 5 fps; fewer frames to encode on the wire
    return path


def _assert_one_identity_each(seen: dict[int, Counter[int | None]], coverage: float) -> None:
    node = {person: counts.most_common(1)[0][0] for person, counts in seen.items()}
    assert set(node) == {A, B}
    assert None not in node.values()
    assert len(set(node.values())) == 2, f"each person one identity, got {node}"
    for person, counts in seen.items():
        assert set(counts) <= {node[person], None}, f"person {person} split over {counts}"
    assert coverage >= 0.85


@pytest.mark.timeout(120)
def test_a_push_builds_the_same_identities_as_the_file(two_people: Path, pack: ModelPack, tmp_path: Path) -> None:
    file_cfg = app_config(tmp_path / "file.db", cameras=[{"name": "cam", "url": str(two_people)}])
    file_summary = asyncio.run(App(file_cfg).run(pack))
    assert file_summary.identities == 2
    _assert_one_identity_each(*faces_by_person(file_cfg.memory, SCRIPT, WIDTH))

    push_cfg = app_config(tmp_path / "push.db")

    async def push() -> int:
        async with running_app(push_cfg, pack) as running:
            sent_at = time.monotonic()
            p = await push_file(running.base, "robot", two_people)
            source = running.app.sources["robot"]
            first = await until("first frame", lambda: source.stats.frames_decoded > 0, 10)
            print(f"first frame {time.monotonic() - sent_at:.2f} s after the offer was sent ({first:.2f} s after the answer)")
            assert source.stats.state in (SourceState.LIVE, SourceState.FROZEN)
            await until("the end of the video", lambda: p.player.video.readyState == "ended", 30)
            await asyncio.sleep(0.5)  # the last frames are still on the wire
            assert await p.delete(running.base) == 200
            await p.close()
            await until("the stream to end", lambda: "robot" not in running.app.sources, 5)
            assert source.stats.state == SourceState.STOPPED
            assert not running.task.done(), "the app must keep running after a push ends"
            return running.app.analyzers["robot"].stats.frames

    frames = asyncio.run(asyncio.wait_for(push(), 100))
    assert frames >= 0.8 * 7.5 * 5, f"only {frames} frames of 7.5 s at 5 fps were analysed"
    seen, coverage = faces_by_person(push_cfg.memory, SCRIPT, WIDTH)
    print(f"pushed: {frames} frames analysed, {coverage:.0%} of faces with an identity, {dict(seen)}")
    _assert_one_identity_each(seen, coverage)
    with Memory(push_cfg.memory) as memory:
        assert sum(1 for n in memory.export_nodes() if n["status"] == "confirmed") == file_summary.identities


@pytest.mark.timeout(60)
def test_refusals_and_ends(tone_clip: Path, pack: ModelPack, tmp_path: Path) -> None:
    async def test() -> None:
        async with running_app(app_config(tmp_path / "m.db"), pack) as running:
            base = running.base
            probe = new_peer()
            probe.addTransceiver("video", direction="sendonly")
            offer = await gathered_offer(probe)
            await probe.close()

            async def post(stream: str, auth: str | None, sdp: str = offer) -> int:
                headers = {"Content-Type": "application/sdp"} | ({"Authorization": auth} if auth else {})
                async with aiohttp.ClientSession() as http:
                    async with http.post(f"{base}/whip/{stream}", data=sdp, headers=headers) as r:
                        return r.status

            assert await post("cam", None) == 401
            assert await post("cam", "Bearer wrong") == 401
            assert await post("cam", f"Basic {TOKEN}") == 401
            assert await post("bad.name", f"Bearer {TOKEN}") == 400
            assert await post("cam", f"Bearer {TOKEN}", "m=video garbage\r\n") == 400
            assert await post("cam", f"Bearer {TOKEN}", offer.replace("m=video", "m=audio")) == 400
            assert not running.app.sources

            # A push gets its stream, audio included; a second push to the same name is refused.
            p = await push_file(base, "cam", tone_clip)
            source = running.app.sources["cam"]
            await until("live", lambda: source.stats.state == SourceState.LIVE, 10)
            assert await post("cam", f"Bearer {TOKEN}") == 409
            # The app's voice path takes the audio as it comes (its content is checked in test_track_audio).
            await until("a second of audio", lambda: source.stats.audio_seconds >= 1.0, 5)
            assert source.stats.audio_state == AudioState.OK

            # DELETE needs the token and the exact resource.
            assert await p.delete(base, token="wrong") == 401
            async with aiohttp.ClientSession() as http:
                async with http.delete(f"{base}/whip/cam/nope", headers={"Authorization": f"Bearer {TOKEN}"}) as r:
                    assert r.status == 404
            assert await p.delete(base) == 200
            await until("the stream to end", lambda: "cam" not in running.app.sources, 5)
            assert source.stats.state == SourceState.STOPPED
            await p.close()

            # The name is free again; a peer that just goes away ends its stream too.
            p = await push_file(base, "cam", tone_clip)
            source = running.app.sources["cam"]
            await until("live", lambda: source.stats.state == SourceState.LIVE, 10)
            await p.close()
            await until("the stream to end", lambda: "cam" not in running.app.sources, 5)
            assert source.stats.state == SourceState.ENDED and source.stats.last_error
            assert not running.task.done()

    asyncio.run(asyncio.wait_for(test(), 50))


@pytest.mark.timeout(60)
def test_a_peer_that_falls_silent_ends_its_stream(tone_clip: Path, pack: ModelPack, tmp_path: Path) -> None:
    """A sender that crashed or lost its network says nothing; the read timeout ends its stream."""

    async def test() -> None:
        cfg = app_config(tmp_path / "m.db", **{"sources.read_timeout_seconds": 1.0})
        async with running_app(cfg, pack) as running:
            p = await push_file(running.base, "cam", tone_clip)  # 4 s, then the sender goes quiet, connection open
            source = running.app.sources["cam"]
            await until("live", lambda: source.stats.state == SourceState.LIVE, 10)
            await until("the end of the clip", lambda: p.player.video.readyState == "ended", 10)
            took = await until("the stream to end", lambda: "cam" not in running.app.sources, 5)
            assert source.stats.state == SourceState.ENDED
            assert source.stats.last_error == "no video for 1 s"
            assert 0.5 < took < 3, took
            assert not running.task.done()
            await p.close()

    asyncio.run(asyncio.wait_for(test(), 50))


def test_a_taken_port_is_one_clear_error(tmp_path: Path) -> None:
    async def test() -> None:
        with socket.socket() as busy:
            busy.bind(("127.0.0.1", 0))
            busy.listen()
            port = busy.getsockname()[1]
            server = WhipServer(App(app_config(tmp_path / "m.db", **{"webrtc.whip_port": port})))
            with pytest.raises(StreamerError, match=f"cannot listen for WHIP on 127.0.0.1:{port}: "):
                await server.start()
            await server.stop()

    asyncio.run(asyncio.wait_for(test(), 10))
