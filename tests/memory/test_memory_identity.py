"""Online identity: matching real faces, strangers, confirmation, expiry, crops."""

from __future__ import annotations

import numpy as np
import pytest
from support.postgres import STORES
from support.realfaces import SAME_PERSON, FaceBank
from support.scenario import Scene, evidence

from memory import NodeKind, NodeStatus

pytestmark = pytest.mark.parametrize("cfg", STORES, indirect=True)  # every test on an SQLite file and on PostgreSQL


def test_same_person_across_augmentations_keeps_one_node(scene: Scene) -> None:
    person = scene.bank.distinct()[0]
    faces = scene.bank.faces(person, 12)
    nodes = set()
    for part in range(4):  # four separate tracks, different augmentations each
        sub = type(faces)(faces.embeddings[part * 3 : part * 3 + 3], faces.qualities[part * 3 : part * 3 + 3])
        _, node = scene.show(person, faces=sub)
        nodes.add(node)
    _, dark = scene.show(person, 4, hard=True)
    nodes.add(dark)
    assert len(nodes) == 1 and None not in nodes


def test_different_people_get_different_nodes(scene: Scene) -> None:
    people = scene.bank.distinct()
    nodes = [scene.show(p)[1] for p in people]
    assert None not in nodes and len(set(nodes)) == len(people)
    again = [scene.show(p, 2, hard=True)[1] for p in people]  # later, blurred and dark
    assert again == nodes


def test_one_person_in_two_photos_is_one_node(scene: Scene) -> None:
    bank = scene.bank
    _, first = scene.show(bank.index(SAME_PERSON[0]))
    _, second = scene.show(bank.index(SAME_PERSON[1]))
    _, other = scene.show(bank.distinct()[0])
    assert first == second != other


def test_faces_that_are_not_good_only_match(scene: Scene) -> None:
    a, b = scene.bank.distinct()[:2]
    track, node = scene.show(a, good=False)
    assert node is None and scene.memory.node_of_track(track) is None
    assert scene.events("node.created") == []
    _, node_a = scene.show(a)
    before = scene.memory.node(node_a).n_embeddings
    track, matched = scene.show(a, 2, hard=True, good=False)
    assert matched == node_a == scene.memory.node_of_track(track)
    assert scene.memory.node(node_a).n_embeddings == before  # matched, not extended
    assert scene.show(b, good=False)[1] is None


def test_a_track_keeps_its_node_and_extends_it(scene: Scene) -> None:
    a, b = scene.bank.distinct()[:2]
    track, node = scene.show(a, 2)
    assert scene.memory.node(node).n_embeddings == 2
    # the same track later brings more faces of a: they extend its node (up to the capacity)
    _, again = scene.show(a, 12, track_id=track)
    assert again == node and scene.memory.node(node).n_embeddings == scene.memory.cfg.max_img_embeddings
    # a different track of b is not pulled into it
    assert scene.show(b)[1] != node


def test_stranger_is_provisional_until_seen_enough_then_confirmed(scene: Scene) -> None:
    person = scene.bank.distinct()[3]
    cfg = scene.memory.cfg
    _, node = scene.show(person, cfg.confirm_min_faces - 1, step=0.0)
    assert scene.memory.node(node).status == NodeStatus.PROVISIONAL
    created = scene.events()
    assert [e.type for e in created] == ["node.created"] and created[0].data["node"] == node
    # enough faces, but all at one instant of stream time: still provisional
    _, same = scene.show(person, 1, step=0.0)
    assert same == node and scene.memory.node(node).status == NodeStatus.PROVISIONAL
    _, same = scene.show(person, 2, step=cfg.confirm_min_seconds)
    assert same == node and scene.memory.node(node).status == NodeStatus.CONFIRMED
    types = [e.type for e in scene.events()]
    assert types.index("node.confirmed") < types.index("person.appeared")


def test_provisional_node_expires_and_its_tracks_lose_it(scene: Scene) -> None:
    a, b = scene.bank.distinct()[:2]
    _, confirmed = scene.show(a, 4)
    track, provisional = scene.show(b, 1)
    scene.events()
    scene.clock.now += scene.memory.cfg.provisional_ttl_seconds + 1
    scene.memory.tick()
    assert scene.memory.node(provisional).status == NodeStatus.EXPIRED
    assert scene.memory.node(confirmed).status == NodeStatus.CONFIRMED
    counts = {status: scene.memory.count(NodeKind.FACE, status) for status in NodeStatus}
    assert counts == {**dict.fromkeys(NodeStatus, 0), NodeStatus.CONFIRMED: 1, NodeStatus.EXPIRED: 1}
    assert scene.memory.count(NodeKind.VOICE, NodeStatus.CONFIRMED) == 0
    assert scene.memory.node_of_track(track) is None
    changes = [(e.type, e.data["node"]) for e in scene.events() if e.type not in ("node.updated", "person.left")]
    assert changes == [("node.expired", provisional)]
    assert provisional not in [n.id for n in scene.memory.nodes()]
    # never announced, so nobody "left" either
    assert all(e.data.get("node") != provisional for e in scene.events("person.left"))
    # the person comes back: a new node, never the expired one
    _, back = scene.show(b, 4)
    assert back not in (None, provisional, confirmed)


def test_provisional_nodes_are_not_announced(scene: Scene) -> None:
    a = scene.bank.distinct()[0]
    scene.show(a, 1)
    assert scene.events("person.appeared") == []
    scene.memory.end_stream("door")
    assert scene.events("person.left") == []


def test_crops_are_kept_best_first(scene: Scene, bank: FaceBank) -> None:
    a = bank.distinct()[0]
    faces = bank.faces(a, 1)
    track, node = scene.show(a, faces=faces)  # brings its own crop, quality = that face's
    shown = float(faces.qualities[0])
    qualities = [shown - 10, shown + 10, shown - 5, shown - 1, shown + 1, shown - 20]
    for i, q in enumerate(qualities):
        ev = evidence("door", track, 10.0 + i, scene.clock.now, faces, crop=bytes([i]) * 10)
        ev.crop_quality = q
        scene.memory.identify_track(ev)
    ranked = sorted([(q, bytes([i]) * 10) for i, q in enumerate(qualities)] + [(shown, bank.jpeg(a))], reverse=True)
    assert scene.memory.crops(node) == [c for _, c in ranked[: scene.memory.cfg.crops_per_node]]


def test_a_returning_track_that_started_unrecognised_joins_its_person(scene: Scene) -> None:
    """A track whose first face matched nobody (turned away, blurred) makes a provisional node;
    once its better faces arrive it joins the person it is, with a node.merged event."""
    from support.realfaces import Faces

    person = scene.bank.distinct()[0]
    _, known = scene.show(person, 4)
    good = scene.bank.faces(person, 4)
    rng = np.random.default_rng(1)
    turned = 0.2 * good.embeddings[0] + rng.normal(0, 1 / np.sqrt(512), 512).astype(np.float32)
    turned /= np.linalg.norm(turned)
    mean = scene.memory._nodes[known].mean  # noqa: SLF001 - the node's mean, to check the premise
    assert float(turned @ mean) < scene.memory.cfg.img_matching_threshold
    track, first = scene.show(person, faces=Faces(turned[None, :], good.qualities[:1]))
    assert first is not None and first != known
    _, later = scene.show(person, faces=Faces(good.embeddings[1:3], good.qualities[1:3]), track_id=track)
    assert later == known
    assert scene.memory.resolve(first) == known and scene.memory.node_of_track(track) == known
    merged = scene.events("node.merged")[-1]
    assert merged.data["from"] == [first] and merged.data["into"] == known and merged.data["manual"] is False


def test_a_person_appears_at_their_first_sighting_not_at_confirmation(scene: Scene) -> None:
    scene.advance(7.0)  # the stream has been running a while
    person = scene.bank.distinct()[1]
    _, node = scene.show(person, 4, step=0.25)  # confirmed on its third observation, 0.5 s later
    (appeared,) = [e for e in scene.events("person.appeared") if e.data["node"] == node]
    assert appeared.data["t"] == 7.0
    assert scene.memory.node(node).status == NodeStatus.CONFIRMED
