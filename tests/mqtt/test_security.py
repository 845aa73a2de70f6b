"""Logins, ACLs and TLS against a real mosquitto."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import pytest

from streamer.errors import PublishError
from streamer.publish import Publisher
from support.mosquitto import Mosquitto, make_tls_files

from .helpers import MemoryRig, mqtt_config, publishing, subscribed

pytestmark = pytest.mark.timeout(60)

SECRET = "s3cret-pw"
USERS = {"streamer": SECRET, "robot": "robot-pw"}


def _with_login(url: str, user: str, password: str) -> str:
    return url.replace("://", f"://{user}:{password}@", 1)


def test_wrong_password_is_one_clear_line_without_the_password(
    tmp_path: Path, rig: MemoryRig, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    with Mosquitto(tmp_path / "broker", users=USERS) as broker:
        with pytest.raises(PublishError) as e:
            asyncio.run(Publisher(mqtt_config(_with_login(broker.url, "streamer", "wrong-pw")), rig.feed()).start())
    message = str(e.value)
    assert "\n" not in message and "refused the login" in message and "streamer@127.0.0.1" in message
    assert "wrong-pw" not in message and "wrong-pw" not in caplog.text


def test_credentials_from_config_fields(tmp_path: Path, rig: MemoryRig, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    with Mosquitto(tmp_path / "broker", users=USERS) as broker:

        async def run() -> None:
            cfg = mqtt_config(broker.url, username="streamer", password=SECRET)
            async with subscribed(broker.port, username="robot", password="robot-pw") as sub, publishing(cfg, rig):
                await sub.wait_for("online", lambda ms: any(m.topic == "status" and m.payload == b"online" for m in ms))

        asyncio.run(run())
    assert SECRET not in caplog.text


def test_acl_denial_delivers_nothing(tmp_path: Path, rig: MemoryRig) -> None:
    """mosquitto acknowledges a denied publish (then drops the client): nothing may reach a subscriber,
    and the publisher keeps trying without failing the streamer."""
    acl = "user robot\ntopic read test/#\ntopic readwrite probe/#\n\nuser streamer\ntopic write test/status\n"
    with Mosquitto(tmp_path / "broker", users=USERS, acl=acl) as broker:

        async def run() -> None:
            url = _with_login(broker.url, "streamer", SECRET)
            async with subscribed(broker.port, username="robot", password="robot-pw") as sub:
                node = await rig.new_face()
                await rig.label(node, "Alice")
                async with publishing(mqtt_config(url), rig):
                    # The broker handles a client's publishes before its will, so by the second
                    # `online` every denied publish of the first connection has been dealt with.
                    got = await sub.wait_for(
                        "a reconnect", lambda ms: [m.payload for m in ms if m.topic == "status"].count(b"online") >= 2
                    )
                assert [m.topic for m in got if m.topic.startswith("memory/")] == []

        asyncio.run(run())


def test_tls_with_a_ca_file(tmp_path: Path, rig: MemoryRig) -> None:
    tls = make_tls_files(tmp_path / "tls")
    with Mosquitto(tmp_path / "broker", tls=tls) as broker:

        async def run() -> None:
            cfg = mqtt_config(broker.url, ca_file=str(tls.ca_cert))
            async with subscribed(broker.port, tls_ca=tls.ca_cert) as sub, publishing(cfg, rig) as pub:
                node = await rig.new_face()
                pub.notify()
                await sub.wait_for("the node over TLS", lambda ms: any(m.topic == f"memory/nodes/{node}" for m in ms))

        asyncio.run(run())


def test_tls_with_the_wrong_ca_is_one_clear_line(tmp_path: Path, rig: MemoryRig) -> None:
    tls = make_tls_files(tmp_path / "tls")
    stranger = make_tls_files(tmp_path / "other", name="other-ca")
    with Mosquitto(tmp_path / "broker", tls=tls) as broker:
        cfg = mqtt_config(broker.url, ca_file=str(stranger.ca_cert))
        with pytest.raises(PublishError) as e:
            asyncio.run(Publisher(cfg, rig.feed()).start())
    assert "\n" not in str(e.value) and "TLS" in str(e.value) and "certificate" in str(e.value)
