"""Retention and strangers: expired nodes (seen too briefly to be confirmed) go once their time is
past, with what only they held; people seen with them stay whole, and so does a stranger a person
or a kept memory names."""

from __future__ import annotations

import pytest
from support.postgres import STORES
from support.realfaces import FaceBank
from support.scenario import Clock, Scene

from memory import Memory, MemoryConfig, NodeKind, NodeNotFound, NodeStatus, Provenance
from memory.nodes import NodeTable
from memory.query import MemoryQuery, PersonNotFound
from memory.store import Store

pytestmark = pytest.mark.parametrize("cfg", STORES, indirect=True)

DAY = 86400.0
SOURCE = Provenance("smollm2", "127.0.0.1:8080", 1_700_000_100.0, False)


def count(memory: Memory, sql: str) -> int:
    """A COUNT(*) over what the store holds once everything pending is committed."""
    memory.flush()
    return int(memory._store.db.execute(sql).fetchone()[0])


def ids(nodes: list[int]) -> str:
    return ", ".join(map(str, nodes))


def expire_all(scene: Scene) -> None:
    """Long enough for every provisional face and voice to expire."""
    scene.clock.now += scene.memory.cfg.voice_provisional_ttl_seconds + 1
    scene.memory.tick()


def past_retention(scene: Scene) -> None:
    scene.clock.now += scene.memory.cfg.retention_days * DAY + 3600


def test_strangers_go_with_what_only_they_held_a_person_from_the_same_time_stays_whole(cfg: MemoryConfig, bank: FaceBank) -> None:
    clock = Clock()
    with Memory(cfg, clock=clock) as memory:
        scene = Scene(memory, clock, bank)
        a, b, c = bank.distinct()[:3]
        _, person = scene.show(a, 4)  # confirmed
        _, named = scene.show(c, 1)
        memory.label(named, "the postman")  # a stranger a person named
        face_track, stranger = scene.show(b, 1)  # seen once: an embedding and a crop, never confirmed
        turn, voice = scene.speak(7, 1.0)  # heard once, too briefly
        assert person is not None and named is not None and stranger is not None and voice is not None
        memory.unlink(stranger, voice)  # an unlink names no one: it goes with them
        expire_all(scene)
        assert [memory.node(n).status for n in (person, named, stranger, voice)] == [NodeStatus.CONFIRMED] + [NodeStatus.EXPIRED] * 3
        gone = [stranger, voice]
        assert max(gone) == voice > max(person, named)  # the highest id so far: it must not be given again
        assert count(memory, f"SELECT COUNT(*) FROM embeddings WHERE node_id IN ({ids(gone)})") == 2
        assert count(memory, f"SELECT COUNT(*) FROM crops WHERE node_id = {stranger}") == 1
        assert count(memory, "SELECT COUNT(*) FROM cannot_link") == 1
        held = {n: count(memory, f"SELECT COUNT(*) FROM embeddings WHERE node_id = {n}") for n in (person, named)}
        crops = {n: memory.crops(n) for n in (person, named)}
        assert all(held.values()) and all(crops.values())
        past_retention(scene)

        assert memory.prune().expired == 2
        asked = (memory.node, memory.crops, memory.edges, memory.tag, memory.forget, lambda n: memory.label(n, "x"),
                 lambda n: memory.merge(person, n), lambda n: memory.split(n, [face_track]), lambda n: memory.link(n, n))  # fmt: skip
        for n in gone:  # every read or edit that names them says so, as of an id never given
            for ask in asked:
                with pytest.raises(NodeNotFound):
                    ask(n)
        for table, column in (("nodes", "id"), ("embeddings", "node_id"), ("crops", "node_id"), ("tracks", "node_id"),
                              ("cannot_link", "a"), ("cannot_link", "b")):  # fmt: skip
            assert count(memory, f"SELECT COUNT(*) FROM {table} WHERE {column} IN ({ids(gone)})") == 0, table
        assert count(memory, f"SELECT COUNT(*) FROM tracks WHERE id IN ({face_track}, {turn})") == 0  # only they held them
        # the person and the named stranger stay whole: rows, embeddings, crops, and the tracks those come from
        assert memory.node(person).status == NodeStatus.CONFIRMED
        assert memory.node(named).status == NodeStatus.EXPIRED and memory.node(named).label == "the postman"
        for n in (person, named):
            assert count(memory, f"SELECT COUNT(*) FROM embeddings WHERE node_id = {n}") == held[n]
            assert memory.crops(n) == crops[n]
            assert count(memory, f"SELECT COUNT(*) FROM embeddings e WHERE e.node_id = {n} "
                                 "AND NOT EXISTS (SELECT 1 FROM tracks t WHERE t.id = e.track_id)") == 0  # fmt: skip
        assert [r["id"] for r in memory.export_nodes()] == [person]
        assert memory.count(NodeKind.FACE, NodeStatus.EXPIRED) == 1 and memory.count(NodeKind.VOICE, NodeStatus.EXPIRED) == 0
        nodes = memory._nodes
        for n in gone:  # the process holds nothing of them either
            assert n not in nodes.rows and n not in nodes._stored_mean and n not in nodes._galleries
            assert n not in nodes._stored_keys and n not in nodes.provisional and n not in memory._crops._by_node
            assert n not in memory._events._last_update and n not in memory._identities.founder
        assert not memory._edits.cannot_link and not memory._characters.never
        assert memory.prune().expired == 0  # nothing is counted twice
    with MemoryQuery(cfg.db, clock=clock) as query:  # a reader of the file knows them no more either
        for n in gone:
            with pytest.raises(PersonNotFound):
                query.person(str(n))
        assert [p.faces for p in query.people()] == [(person,)]
    with Memory(cfg, clock=clock) as memory:  # a restart loads none of them, and gives their ids to nobody
        assert set(memory._nodes.rows) == {person, named}
        scene = Scene(memory, clock, bank)
        _, newcomer = scene.show(b, 1)
        assert newcomer is not None and newcomer > voice


def test_a_node_merged_into_a_stranger_goes_with_it(cfg: MemoryConfig, bank: FaceBank) -> None:
    clock = Clock()
    with Memory(cfg, clock=clock) as memory:
        scene = Scene(memory, clock, bank)
        b, c = bank.distinct()[1:3]
        _, survivor = scene.show(b, 1)
        _, merged = scene.show(c, 1)
        assert survivor is not None and merged is not None
        memory.flush()  # the merged node's embeddings are stored under its own id, and stay so
        assert memory.merge(survivor, merged) == survivor
        expire_all(scene)  # the provisional survivor expires
        assert memory.node(survivor).status == NodeStatus.EXPIRED and memory.resolve(merged) == survivor
        assert count(memory, f"SELECT COUNT(*) FROM embeddings WHERE node_id = {merged}") == 1
        past_retention(scene)
        assert memory.prune().expired == 2
        for n in (survivor, merged):
            with pytest.raises(NodeNotFound):
                memory.resolve(n)
        both = ids([survivor, merged])
        assert count(memory, f"SELECT COUNT(*) FROM nodes WHERE id IN ({both})") == 0
        assert count(memory, f"SELECT COUNT(*) FROM embeddings WHERE node_id IN ({both})") == 0
        assert count(memory, f"SELECT COUNT(*) FROM crops WHERE node_id IN ({both})") == 0
    with Memory(cfg, clock=clock) as memory:
        assert not memory._nodes.rows


def test_a_face_and_voice_tied_by_hand_stay_though_expired(cfg: MemoryConfig, bank: FaceBank) -> None:
    """Someone tied a stranger's face to a voice after both expired: the tie names them, so they stay."""
    clock = Clock()
    with Memory(cfg, clock=clock) as memory:
        scene = Scene(memory, clock, bank)
        _, face = scene.show(bank.distinct()[1], 1)
        _, voice = scene.speak(7, 1.0)
        _, passer_by = scene.show(bank.distinct()[2], 1)
        assert face is not None and voice is not None and passer_by is not None
        expire_all(scene)
        memory.link(face, voice)
        assert memory.node(face).status == memory.node(voice).status == NodeStatus.EXPIRED
        past_retention(scene)
        assert memory.prune().expired == 1  # the passer-by only
        assert memory.node(face).status == memory.node(voice).status == NodeStatus.EXPIRED
        assert count(memory, f"SELECT COUNT(*) FROM embeddings WHERE node_id IN ({ids([face, voice])})") == 2
        with pytest.raises(NodeNotFound):
            memory.node(passer_by)


def test_a_stranger_a_kept_memory_names_stays_until_the_memory_goes(cfg: MemoryConfig, bank: FaceBank) -> None:
    clock = Clock()
    with Memory(cfg, clock=clock) as memory:
        scene = Scene(memory, clock, bank)
        a, passer_by = bank.distinct()[0], bank.distinct()[5]
        _, face = scene.show(a, 4)
        _, voice = scene.speak(7, 1.0)  # a provisional voice in clip 0, beside a confirmed face
        scene.stream_t["door"] = memory.cfg.interval_seconds + 0.5
        scene.show(passer_by, 1)  # closes clip 0; a stranger of its own
        (_, _, episodic), (fact, _, linked) = memory.add_model_memories(
            "door", 0, [f"<voice_{voice}> asks the way"], [f"<face_{face}> talks with <voice_{voice}>"], SOURCE)  # fmt: skip
        assert episodic == [voice] and linked == sorted([face, voice])
        expire_all(scene)
        assert memory.node(voice).status == NodeStatus.EXPIRED
        past_retention(scene)
        scene.show(a, 4)  # the face is seen again: the fact about both stays, and so does the voice it names
        assert memory.prune().expired == 1  # the passer-by
        assert memory.node(voice).status == NodeStatus.EXPIRED
        assert sorted(dst for src, dst, _ in memory.edges(fact) if src == fact) == sorted([face, voice])
        past_retention(scene)  # a retention period without the face: the fact goes, then the voice it named
        assert memory.prune().expired == 1
        with pytest.raises(NodeNotFound):
            memory.node(voice)
        with pytest.raises(NodeNotFound):
            memory.text(fact)
        assert count(memory, f"SELECT COUNT(*) FROM edges WHERE dst = {voice}") == 0
        assert memory.node(face).status == NodeStatus.CONFIRMED


def test_an_inactive_nodes_mean_leaves_memory_once_stored(cfg: MemoryConfig, bank: FaceBank) -> None:
    """Strangers expire by the hundred a day: their rows stay in memory until retention, without the
    512 floats of a mean nothing matches against again. The stored row keeps it; a restart reads none."""
    clock = Clock()
    with Memory(cfg, clock=clock) as memory:
        scene = Scene(memory, clock, bank)
        a, b, c, d = bank.distinct()[:4]
        _, person = scene.show(a, 4)
        _, stranger = scene.show(b, 1)
        _, survivor = scene.show(c, 1)
        _, merged = scene.show(d, 1)
        assert person is not None and stranger is not None and survivor is not None and merged is not None
        memory.merge(survivor, merged)
        scene.clock.now += memory.cfg.provisional_ttl_seconds + 1
        memory.tick()
        memory.flush()
        nodes = memory._nodes
        assert nodes.rows[person].mean is not None
        assert [nodes.rows[n].mean for n in (stranger, survivor, merged)] == [None] * 3
        inactive = ids([stranger, survivor, merged])
        assert count(memory, f"SELECT COUNT(*) FROM nodes WHERE id IN ({inactive}) AND mean IS NOT NULL") == 3
    store = Store(cfg.db)
    try:
        loaded = NodeTable(store)
        assert loaded.rows[person].mean is not None
        assert [loaded.rows[n].mean for n in (stranger, survivor, merged)] == [None] * 3
        assert len(loaded.gallery(stranger)) == 1  # read back from the store when asked for
    finally:
        store.close()
