"""`streamer run --whip/--whep` as a user meets it: flags into config, and a process that takes pushes until interrupted."""

from __future__ import annotations

import asyncio
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import aiohttp
import pytest

from streamer.cli import build_parser, config_from_args
from streamer.webrtc.peer import new_peer

from .conftest import gathered_offer


def _config(*argv: str):  # type: ignore[no-untyped-def]
    return config_from_args(build_parser().parse_args(["run", *argv]))


def test_flags_become_config() -> None:
    cfg = _config("--whip", "0.0.0.0:8443", "--whip-token", "t0k", "--whep", "http://cam.local:8889/door/whep",
                  "--whep", "yard=wheps://cam.local/yard/whep", "a.mp4")  # fmt: skip
    w = cfg.webrtc
    assert (w.whip_enabled, w.whip_host, w.whip_port, w.whip_token) == (True, "0.0.0.0", 8443, "t0k")
    assert "t0k" not in repr(cfg)
    assert [(c.name, c.url) for c in cfg.cameras] == [
        ("a", "a.mp4"),
        ("cam_local_door_whep", "whep://cam.local:8889/door/whep"),
        ("yard", "wheps://cam.local/yard/whep"),
    ]
    assert _config("--whip", ":9000").webrtc.whip_host == "0.0.0.0"
    assert not _config("a.mp4").webrtc.whip_enabled


@pytest.mark.parametrize("argv", [["--whip", "8080"], ["--whip", "host:http"], ["--whep", "rtsp://cam/1"]])
def test_bad_flags_are_refused(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        build_parser().parse_args(["run", *argv])
    assert exit_.value.code == 2
    assert "expected" in capsys.readouterr().err


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.timeout(90)
def test_run_with_whip_takes_pushes_until_interrupted(tmp_path: Path) -> None:
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    proc = subprocess.Popen(
        [sys.executable, "-m", "streamer", "run", "--whip", f"127.0.0.1:{port}", "--whip-token", "t0k",
         "--no-mqtt", "--db", str(tmp_path / "m.db"), "-q"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip

    async def talk() -> None:
        async with aiohttp.ClientSession() as http:
            t0 = time.monotonic()
            while True:  # up once the models are loaded
                assert proc.poll() is None, "the streamer exited"
                try:
                    async with http.get(base + "/") as r:
                        page = await r.text()
                        break
                except aiohttp.ClientConnectionError:
                    assert time.monotonic() - t0 < 60, "the WHIP server never came up"
                    await asyncio.sleep(0.2)
            assert r.status == 200 and r.content_type == "text/html" and "getUserMedia" in page
            pc = new_peer()
            pc.addTransceiver("video", direction="sendonly")
            offer = await gathered_offer(pc)
            sdp = {"Content-Type": "application/sdp"}
            async with http.post(base + "/whip/door", data=offer, headers=sdp) as r:
                assert r.status == 401 and r.headers["WWW-Authenticate"] == "Bearer"
            auth = {"Authorization": "Bearer t0k"}
            async with http.post(base + "/whip/door", data=offer, headers=sdp | auth) as r:
                assert r.status == 201, await r.text()
                location = r.headers["Location"]
                assert location.startswith("/whip/door/")
            async with http.delete(base + location, headers=auth) as r:
                assert r.status == 200
            await pc.close()

    try:
        asyncio.run(asyncio.wait_for(talk(), 75))
        assert proc.poll() is None, "a push that ends must not end the process"
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=15)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0, err
    assert "Traceback" not in err and "done:" in err
