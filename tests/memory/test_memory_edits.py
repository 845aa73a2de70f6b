"""Edits by hand: label, merge, split. Each is an event, and old ids keep resolving."""

from __future__ import annotations

import pytest
from support.scenario import Scene, evidence, voices

from memory import MemoryGraphError, NodeKind, NodeNotFound, NodeStatus


def test_label_is_an_event_and_shows_everywhere(scene: Scene) -> None:
    _, node = scene.show(scene.bank.distinct()[0])
    scene.events()
    scene.memory.label(node, "Ana")
    scene.memory.label(node, "Ana B.")
    assert [(e.data["label"], e.data["previous"]) for e in scene.events("node.labelled")] == [("Ana", None), ("Ana B.", "Ana")]
    assert scene.memory.node(node).label == "Ana B."
    assert [n["label"] for n in scene.memory.export_nodes() if n["id"] == node] == ["Ana B."]


def test_merge_moves_everything_and_old_id_resolves(scene: Scene) -> None:
    a, b, c = scene.bank.distinct()[:3]
    a_track, keep = scene.show(a)
    b_track, other = scene.show(b)
    _, third = scene.show(c)
    scene.memory.label(other, "Bo")
    scene.events()
    assert scene.memory.merge(keep, other) == keep
    (event,) = scene.events("node.merged")
    assert event.data == {"from": [other], "into": keep, "kind": "face", "manual": True}
    assert scene.memory.resolve(other) == keep and scene.memory.node(other).id == keep
    assert scene.memory.node_of_track(b_track) == keep == scene.memory.node_of_track(a_track)
    merged = scene.memory.node(keep)
    assert merged.label == "Bo" and merged.n_embeddings == 8
    assert merged.n_observations == 8
    assert {f["node"] for f in scene.memory.export_faces()} == {keep, third}
    assert other not in [n.id for n in scene.memory.nodes()]
    assert other in [n.id for n in scene.memory.nodes(include_inactive=True)]
    assert [n["merged_from"] for n in scene.memory.export_nodes() if n["id"] == keep] == [[other]]
    # merging again, or through the old id, changes nothing
    assert scene.memory.merge(other, keep) == keep
    assert scene.events("node.merged") == []


def test_merge_refuses_mixed_kinds_and_unknown_ids(scene: Scene) -> None:
    _, face = scene.show(scene.bank.distinct()[0])
    voice = scene.memory.identify_track(evidence("door", scene.memory.new_track_id(), 1.0, scene.clock.now,
                                                 voices(0, 3)), kind=NodeKind.VOICE)  # fmt: skip
    assert voice is not None
    with pytest.raises(MemoryGraphError):
        scene.memory.merge(face, voice)
    with pytest.raises(NodeNotFound):
        scene.memory.merge(face, 9999)
    with pytest.raises(KeyError):  # NodeNotFound is a KeyError too
        scene.memory.node(9999)


def test_split_moves_tracks_embeddings_and_faces(scene: Scene) -> None:
    a, b = scene.bank.distinct()[:2]
    a_tracks = [scene.show(a, 3)[0] for _ in range(2)]
    b_track, b_node = scene.show(b, 3)
    node = scene.memory.merge(scene.memory.node_of_track(a_tracks[0]), b_node)  # a wrong merge...
    scene.events()
    new = scene.memory.split(node, [b_track])  # ...undone by hand
    (event,) = scene.events("node.split")
    assert event.data == {"from": node, "into": [new], "kind": "face", "tracks": [b_track], "manual": True}
    assert scene.memory.node_of_track(b_track) == new
    assert all(scene.memory.node_of_track(t) == node for t in a_tracks)
    assert scene.memory.node(new).n_embeddings == 3 and scene.memory.node(node).n_embeddings == 6
    assert scene.memory.node(new).status == NodeStatus.CONFIRMED
    faces = list(scene.memory.export_faces())
    assert sum(f["node"] == new for f in faces) == 3 and sum(f["node"] == node for f in faces) == 6
    assert scene.memory.node(new).n_observations == 3 and scene.memory.node(node).n_observations == 6
    # b is recognised as the new node, and re-clustering does not undo a split made by hand
    assert scene.show(b, 2, hard=True)[1] == new
    scene.memory.cfg.recluster.merge_min_similarity = 0.01
    scene.memory.recluster()
    assert scene.memory.node_of_track(b_track) == new and scene.events("node.merged") == []


def test_split_refuses_tracks_of_other_nodes(scene: Scene) -> None:
    a, b = scene.bank.distinct()[:2]
    _, node = scene.show(a)
    b_track, _ = scene.show(b)
    with pytest.raises(MemoryGraphError, match="not tracks of node"):
        scene.memory.split(node, [b_track])
    with pytest.raises(MemoryGraphError):
        scene.memory.split(node, [])
