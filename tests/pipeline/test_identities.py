"""The whole pipeline on videos of real people: identities, not call counts."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from memory import Memory
from streamer.app import App, RunSummary
from streamer.config import Config, load_config
from streamer.demo.cast import Person
from streamer.demo.compose import Appearance, Cut, render_video
from streamer.faces.models import ModelPack
from support.identities import faces_by_person

pytestmark = pytest.mark.timeout(240)

A, B, C = 0, 1, 6
ENTER_LEAVE = [
    Appearance(A, 0, 5, 0.25),
    Appearance(B, 2, 8, 0.75),  # two at once from 2 s to 5 s
    Appearance(C, 8, 12, 0.5),
    Appearance(A, 12, 16, 0.5),  # A comes back after the others
]
E, F = 4, 5
CUTS = [Cut(E, 0, 3), Cut(F, 3, 6), Cut(E, 6, 9), Cut(A, 9, 11)]


def _config(video: Path, db: Path) -> Config:
    return load_config(
        overrides={"cameras": [{"name": "cam", "url": str(video)}], "memory.db": str(db), "mqtt.enabled": False},
        environ={},
    )


def _run(cfg: Config, pack: ModelPack) -> RunSummary:
    return asyncio.run(App(cfg).run(pack))


@pytest.fixture(scope="module")
def enter_leave_video(cast: list[Person], media_dir: Path) -> Path:
    path = media_dir / "enter_leave.mp4"
    render_video(path, cast, ENTER_LEAVE)
    return path


def test_people_entering_leaving_and_returning(enter_leave_video: Path, pack: ModelPack, tmp_path: Path) -> None:
    db = tmp_path / "memory.db"
    summary = _run(_config(enter_leave_video, db), pack)
    seen, coverage = faces_by_person(_config(Path("unused"), db).memory, ENTER_LEAVE)
    node = {person: counts.most_common(1)[0][0] for person, counts in seen.items()}
    assert set(node) == {A, B, C}
    assert None not in node.values()
    assert len(set(node.values())) == 3, f"each person one identity, got {node}"
    for person, counts in seen.items():  # every face of a person carries that person's identity (or none yet)
        assert set(counts) <= {node[person], None}, f"person {person} split over {counts}"
    assert summary.identities == 3
    assert coverage >= 0.85

    # A second run over the same video with the same memory creates no new identity.
    before = {n["id"] for n in _export_nodes(db)}
    summary2 = _run(_config(enter_leave_video, db), pack)
    after = {n["id"] for n in _export_nodes(db)}
    assert after == before
    seen2, _ = faces_by_person(_config(Path("unused"), db).memory, ENTER_LEAVE)
    assert {p: c.most_common(1)[0][0] for p, c in seen2.items()} == node
    assert summary2.identities == 3


def _export_nodes(db: Path) -> list[dict]:
    with Memory(_config(Path("unused"), db).memory) as memory:
        return list(memory.export_nodes())


def test_hard_cuts_never_carry_an_identity_to_the_next_person(cast: list[Person], media_dir: Path, pack: ModelPack, tmp_path: Path) -> None:
    video = media_dir / "cuts.mp4"
    render_video(video, cast, CUTS)
    db = tmp_path / "memory.db"
    _run(_config(video, db), pack)
    seen, coverage = faces_by_person(_config(Path("unused"), db).memory, CUTS)
    assert set(seen) == {E, F, A}
    node = {person: counts.most_common(1)[0][0] for person, counts in seen.items()}
    assert len(set(node.values())) == 3
    for person, counts in seen.items():
        assert set(counts) <= {node[person], None}, f"person {person} got {counts}"
    assert coverage >= 0.85


def test_a_person_returning_smaller_and_in_other_light_keeps_their_identity(
    cast: list[Person], media_dir: Path, pack: ModelPack, tmp_path: Path
) -> None:
    script = [
        Appearance(A, 0, 4, 0.3),
        Appearance(B, 4, 8, 0.6),
        Appearance(A, 8, 12, 0.7, scale=0.7, light=0.6),  # further away, in a darker room
        Appearance(B, 12, 15, 0.4, scale=1.25, light=1.3),  # nearer, in brighter light
    ]
    video = media_dir / "restyled.mp4"
    render_video(video, cast, script)
    db = tmp_path / "memory.db"
    summary = _run(_config(video, db), pack)
    seen, coverage = faces_by_person(_config(Path("unused"), db).memory, script)
    node = {person: counts.most_common(1)[0][0] for person, counts in seen.items()}
    assert set(node) == {A, B} and None not in node.values() and node[A] != node[B]
    for person, counts in seen.items():
        assert set(counts) <= {node[person], None}, f"person {person} got {counts}"
    assert summary.identities == 2
    assert coverage >= 0.85
