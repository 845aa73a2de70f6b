"""Periodic re-clustering repairs online mistakes on real faces, and never merges strangers."""

from __future__ import annotations

import numpy as np
from support.realfaces import FaceBank
from support.scenario import Scene

from memory import NodeStatus


def test_merges_the_sharp_and_the_dark_node_of_each_person(scene: Scene) -> None:
    people = scene.bank.distinct()
    scene.memory.cfg.img_matching_threshold = 0.95  # online matching too strict: duplicates appear
    tracks: dict[int, list[int]] = {}
    for p in people:
        tracks[p] = [scene.show(p, 3)[0] for _ in range(3)] + [scene.show(p, 3, hard=True)[0] for _ in range(2)]
    before = {p: {scene.memory.node_of_track(t) for t in ts} for p, ts in tracks.items()}
    assert sum(len(n) for n in before.values()) > len(people)  # there is something to repair
    scene.events()
    scene.memory.recluster()
    after = {p: {scene.memory.node_of_track(t) for t in ts} for p, ts in tracks.items()}
    assert all(len(nodes) == 1 for nodes in after.values())
    assert len({next(iter(nodes)) for nodes in after.values()}) == len(people)  # different people stay apart
    merged = scene.events("node.merged")
    assert merged and all(e.data["into"] not in e.data["from"] for e in merged)
    for e in merged:  # every old id now resolves to its survivor
        for old in e.data["from"]:
            assert scene.memory.node(old).id == scene.memory.resolve(e.data["into"])
            assert scene.memory.node(old).status != NodeStatus.MERGED


def test_tick_reclusters_when_enough_faces_arrived(scene: Scene) -> None:
    p = scene.bank.distinct()[0]
    scene.memory.cfg.img_matching_threshold = 0.95
    scene.memory.cfg.recluster.every_faces = 12
    tracks = [scene.show(p, 3, hard=i % 2 == 1)[0] for i in range(4)]
    assert len({scene.memory.node_of_track(t) for t in tracks}) > 1
    scene.memory.tick()
    assert len({scene.memory.node_of_track(t) for t in tracks}) == 1


def test_tick_rests_after_a_run_in_proportion_to_its_cost(scene: Scene) -> None:
    p, q = scene.bank.distinct()[:2]
    scene.memory.cfg.img_matching_threshold = 0.95
    scene.memory.cfg.recluster.every_faces = 12
    scene.memory.cfg.recluster.max_share = 1e-6  # rest a million times as long as the run took
    first = [scene.show(p, 3, hard=i % 2 == 1)[0] for i in range(4)]
    scene.memory.tick()
    assert len({scene.memory.node_of_track(t) for t in first}) == 1
    later = [scene.show(q, 3, hard=i % 2 == 1)[0] for i in range(4)]
    assert len({scene.memory.node_of_track(t) for t in later}) > 1
    scene.memory.tick()  # due by its faces, but resting
    assert len({scene.memory.node_of_track(t) for t in later}) > 1
    scene.advance(2e6)  # well past any run's cost x 1e6, within retention
    scene.memory.tick()
    assert len({scene.memory.node_of_track(t) for t in later}) == 1


def test_the_closest_different_people_are_not_merged(scene: Scene, bank: FaceBank) -> None:
    a, b = bank.index("players0"), bank.index("players11")  # the closest pair of different people
    scene.memory.cfg.img_matching_threshold = 0.4  # this small recogniser confuses them at 0.3 online
    a_track, a_node = scene.show(a, 4)
    b_track, b_node = scene.show(b, 4)
    a_track2, _ = scene.show(a, 4)
    b_track2, _ = scene.show(b, 4)
    assert a_node != b_node
    scene.memory.cfg.recluster.merge_min_similarity = 0.45
    scene.memory.recluster()
    assert scene.memory.node_of_track(a_track) == scene.memory.node_of_track(a_track2) == a_node
    assert scene.memory.node_of_track(b_track) == scene.memory.node_of_track(b_track2) == b_node
    assert scene.events("node.merged") == []


def test_splits_a_node_that_holds_two_people(scene: Scene, bank: FaceBank) -> None:
    a, b = bank.index("t10"), bank.index("t11")
    ea, eb = bank.faces(a, 6).embeddings.mean(0), bank.faces(b, 6).embeddings.mean(0)
    assert float(ea @ eb) / float(np.linalg.norm(ea) * np.linalg.norm(eb)) < scene.memory.cfg.recluster.split_max_similarity
    scene.memory.cfg.img_matching_threshold = 0.01  # online matching too loose: b joins a's node
    a_tracks = [scene.show(a, 3)[0] for _ in range(3)]
    b_tracks = [scene.show(b, 3)[0] for _ in range(2)]
    (node,) = {scene.memory.node_of_track(t) for t in a_tracks + b_tracks}
    scene.events()
    scene.memory.cfg.img_matching_threshold = 0.3
    scene.memory.recluster()
    assert {scene.memory.node_of_track(t) for t in a_tracks} == {node}  # the larger part keeps the id
    (new,) = {scene.memory.node_of_track(t) for t in b_tracks}
    assert new != node
    (split,) = scene.events("node.split")
    assert split.data["from"] == node and split.data["into"] == [new] and split.data["tracks"] == sorted(b_tracks)
    # each part now matches only its own person
    assert scene.show(b, 2, hard=True)[1] == new
    assert scene.show(a, 2, hard=True)[1] == node
