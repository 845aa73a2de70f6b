"""Query latency of memory.query on a synthetic memory, and search quality on a small labelled set.

    python tools/bench_query.py                  # 1,000 characters, 100,000 observations
    python tools/bench_query.py --retrieval      # the labelled paraphrase set: words alone vs words + meaning
    python tools/bench_query.py --db postgresql://USER@HOST/EMPTY_DB   # the same latencies on PostgreSQL

The synthetic memory is written straight into a fresh store through the schema (the Memory would take
an hour to see 100,000 faces): 1,000 characters (a face and a voice each, labelled), face tracks over
30 days in 8 cameras, observations, speech turns with transcripts, clips with their episodic
memories and edges, semantic memories, presence events (50 people present now). Sentence vectors
of the stored texts are random unit vectors (embedding 40,000 texts takes ~20 min here); the query's
own vector is real, so a search pays for the model, the matrix product and the word index as it would.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from contextlib import closing
from pathlib import Path
from typing import Any

os.environ.setdefault("OMP_NUM_THREADS", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402

from memory.database import open_database  # noqa: E402
from memory.query import MemoryQuery  # noqa: E402
from memory.schema import connect  # noqa: E402

START = 1_700_000_000.0
STREAMS = [f"cam{i}" for i in range(8)]
WORDS = ("tea coffee train bus meeting garden dog cat football piano doctor school holiday report weather lunch kitchen "
         "office car bike book film music sister brother market bread rain snow").split()  # fmt: skip

# (a thing someone said, a question that means it with other words)
LABELLED = [
    ("I drink tea every morning before work.", "who likes tea"),
    ("I drink tea every morning before work.", "who enjoys hot drinks in the morning"),
    ("My sister lives in Lisbon.", "who has family in Portugal"),
    ("The train was late again today.", "who complained about public transport"),
    ("Good morning, shall we start?", "who greeted everyone"),
    ("I'm originally from Chicago.", "who grew up in Illinois"),
    ("My dog is called Rex and he loves the park.", "who has a pet"),
    ("I have to pick up the kids from school at three.", "who has children"),
    ("The heating in the office is broken again.", "what is wrong with the office"),
    ("I'm allergic to peanuts, so no cake for me.", "who has a food allergy"),
    ("We are going skiing in the Alps in February.", "who is planning a winter holiday"),
    ("Can you send me the report by Friday?", "what deadline was mentioned"),
    ("I started learning the piano last year.", "who plays a musical instrument"),
    ("My car needs new tyres.", "who has car trouble"),
    ("The doctor said I should walk more.", "what did the doctor advise"),
    ("I just finished reading a novel about whales.", "who reads books"),
    ("Our football team won on Sunday.", "what sport was mentioned"),
    ("I'm moving to a new flat next month.", "who is changing address"),
    ("Please water the plants while I'm away.", "what should be done with the plants"),
    ("The coffee machine is out of order.", "is the espresso maker working"),
]


def build(path: str, characters: int, observations: int, seed: int = 0) -> dict[str, Any]:
    rng = random.Random(seed)
    db = connect(path)
    db.execute("BEGIN")
    nodes, tracks, obs, turns, texts, edges, events = [], [], [], [], [], [], []
    char_rows = []
    face_tracks: dict[int, list[tuple[int, str, float, float]]] = {}
    track_id = 0
    per_person = max(1, observations // characters // 10)  # observations per face track
    for c in range(characters):
        face, voice = 2 * c + 1, 2 * c + 2
        label = f"person{c:04d}"
        for n, kind in ((face, "face"), (voice, "voice")):
            nodes.append((n, kind, "confirmed", label if kind == "face" else None, START, START, START + 30 * 86400, json.dumps(STREAMS[:2])))
            char_rows.append((n, c + 1))
        for _ in range(10):
            track_id += 1
            stream = rng.choice(STREAMS)
            t0 = START + rng.uniform(0, 30 * 86400)
            t1 = t0 + per_person * 0.2
            tracks.append((track_id, stream, face, t0 - START, t1 - START, t0, t1))
            face_tracks.setdefault(face, []).append((track_id, stream, t0, t1))
            obs += [(track_id, stream, t0 - START + k * 0.2, t0 + k * 0.2) for k in range(per_person)]
        for _ in range(5):
            track_id += 1
            stream = rng.choice(STREAMS)
            t0 = START + rng.uniform(0, 30 * 86400)
            tracks.append((track_id, stream, voice, t0 - START, t0 - START + 3, t0, t0 + 3))
            said = " ".join(rng.choice(WORDS) for _ in range(8))
            turns.append((track_id, stream, t0 - START, t0 - START + 3, t0, said))
    next_id = 2 * characters + 1
    clips = []
    for k in range(characters * 5):  # clips: who was there, together, one quote
        stream = rng.choice(STREAMS)
        start = START + rng.uniform(0, 30 * 86400)
        a, b = rng.sample(range(characters), 2)
        clip_id = k + 1
        clips.append((clip_id, stream, k, start - START, start - START + 30, start, start + 30, next_id))
        for text, named in ((f"<character_{a + 1}> and <character_{b + 1}> were seen in camera '{stream}'", [2 * a + 1, 2 * b + 1]),
                            (f"<character_{a + 1}> and <character_{b + 1}> were together in camera '{stream}'", [2 * a + 1, 2 * b + 1]),
                            (f'<character_{a + 1}> says: "{" ".join(rng.choice(WORDS) for _ in range(8))}"', [2 * a + 2])):  # fmt: skip
            nodes.append((next_id, "episodic", "confirmed", None, start, start, start + 30, json.dumps([stream])))
            texts.append((next_id, clip_id, text))
            edges += [(next_id, n, 1.0) for n in named]
            next_id += 1
    for c in range(characters):  # semantic memories
        nodes.append((next_id, "semantic", "confirmed", None, START, START, START, "[]"))
        texts.append((next_id, None, f"<character_{c + 1}> has been seen in 5 clips over 4 days, most often in camera 'cam{c % 8}'"))
        edges.append((next_id, 2 * c + 1, 1.0))
        next_id += 1
    now = START + 30 * 86400
    for c in range(characters):  # presence: everyone came and went; 50 are here now
        face = 2 * c + 1
        for track, stream, t0, t1 in face_tracks[face]:
            events.append(("person.appeared", t0, stream, face))
            if c >= 50 or track != face_tracks[face][-1][0]:
                events.append(("person.left", t1, stream, face))
    events.sort(key=lambda e: e[1])
    db.executemany("INSERT INTO nodes (id, kind, status, label, created_wall, first_seen_wall, last_seen_wall, n_observations, "
                   "n_embeddings, good_faces, streams) VALUES (?, ?, ?, ?, ?, ?, ?, 0, 0, 0, ?)", nodes)  # fmt: skip
    db.executemany("INSERT INTO characters (node_id, character_id) VALUES (?, ?)", char_rows)
    db.executemany("INSERT INTO tracks (id, stream, node_id, first_t, last_t, first_wall, last_wall) VALUES (?, ?, ?, ?, ?, ?, ?)", tracks)
    db.executemany("INSERT INTO observations (track_id, stream, t, wall_time, x1, y1, x2, y2, det_score, quality, face_type) "
                   "VALUES (?, ?, ?, ?, 0, 0, 100, 120, 0.9, 22.0, 'ortho')", obs)  # fmt: skip
    db.executemany("INSERT INTO speech_turns (track_id, stream, t_start, t_end, wall_time, good, text) VALUES (?, ?, ?, ?, ?, 1, ?)", turns)
    db.executemany("INSERT INTO clips (id, stream, idx, first_t, last_t, start_wall, end_wall, text_node) VALUES (?, ?, ?, ?, ?, ?, ?, ?)", clips)
    db.executemany("INSERT INTO text_nodes (node_id, clip_id, text) VALUES (?, ?, ?)", texts)
    db.executemany("INSERT INTO edges (src, dst, weight) VALUES (?, ?, ?)", edges)
    db.executemany("INSERT INTO events (id, type, wall_time, stream, data) VALUES (?, ?, ?, ?, ?)",
                   [(str(i), t, w, s, json.dumps({"node": n, "kind": "face"})) for i, (t, w, s, n) in enumerate(events)])  # fmt: skip
    vectors = np.random.default_rng(seed).standard_normal((len(texts) + len(turns), 384)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    keys = [("memory", t[0]) for t in texts] + [("speech", t[0]) for t in turns]
    db.executemany("INSERT INTO text_vectors (source, id, vec) VALUES (?, ?, ?)", [(s, i, v.tobytes()) for (s, i), v in zip(keys, vectors)])
    db.execute("COMMIT")
    db.execute("ANALYZE")
    db.close()
    return {"characters": characters, "observations": len(obs), "tracks": len(tracks), "turns": len(turns), "texts": len(texts),
            "events": len(events), "clips": len(clips), "now": now}  # fmt: skip


def timed(fn: Callable[[], Any], runs: int) -> tuple[float, float]:
    fn()  # warm: connection, caches
    samples = []
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - t0) * 1000)
    samples.sort()
    return statistics.median(samples), samples[int(0.95 * (len(samples) - 1))]


def latency(args: argparse.Namespace) -> None:
    path = args.db or os.path.join(tempfile.mkdtemp(), "memory.db")
    t0 = time.perf_counter()
    sizes = build(path, args.characters, args.observations)
    print(f"built {path} in {time.perf_counter() - t0:.1f} s: {sizes}")
    rng = random.Random(1)
    now = sizes["now"]
    with MemoryQuery(path, clock=lambda: now) as q:
        def person() -> str:
            return f"person{rng.randrange(args.characters):04d}"

        cases: dict[str, Callable[[], Any]] = {
            "present": q.present,
            "last_seen": lambda: q.last_seen(person()),
            "said": lambda: q.said(person()),
            "together": lambda: q.together(person()),
            "seen_last_hour": lambda: q.seen_between(now - 3600, now),
            "clip": lambda: q.clip(*_a_clip(path, rng)),
            "search": lambda: q.search(rng.choice([s for _, s in LABELLED] + WORDS)),
        }
        print(f"{'query':16s} {'p50 ms':>8s} {'p95 ms':>8s}")
        for name, fn in cases.items():
            p50, p95 = timed(fn, args.runs)
            print(f"{name:16s} {p50:8.1f} {p95:8.1f}")


_CLIPS: list[tuple[str, int]] = []


def _a_clip(path: str, rng: random.Random) -> tuple[str, int]:
    if not _CLIPS:
        with closing(open_database(path, read_only=True)) as db:
            _CLIPS.extend(db.execute("SELECT stream, idx FROM clips").fetchall())
    return rng.choice(_CLIPS)


def retrieval(_args: argparse.Namespace) -> None:
    """Top-1 over the labelled set: each question must find its sentence among all of them."""
    folder = tempfile.mkdtemp()
    path = os.path.join(folder, "memory.db")
    sentences = list(dict.fromkeys(s for s, _ in LABELLED))
    db = connect(path)
    db.execute("BEGIN")
    for i, s in enumerate(sentences, 1):
        db.execute("INSERT INTO speech_turns (track_id, stream, t_start, t_end, wall_time, good, text) VALUES (?, 'cam', 0, 1, ?, 1, ?)",
                   (i, START + i, s))  # fmt: skip
    db.execute("COMMIT")
    db.close()
    with MemoryQuery(path) as q, closing(open_database(path, read_only=True)) as ro:
        t0 = time.perf_counter()
        q.index_texts()
        print(f"embedded {len(sentences)} sentences in {time.perf_counter() - t0:.2f} s")
        words = fused = returned = 0
        for sentence, question in LABELLED:
            by_words = q.search_index.by_words(ro, question, 1)  # the word ranking alone, for comparison
            words += bool(by_words) and by_words[0][1] == sentences.index(sentence) + 1
            hits = q.search(question, 10)
            fused += bool(hits) and sentence in hits[0].text
            returned += len(hits)
            print(f"  {question!r:45s} -> {hits[0].text if hits else '(nothing)'!r} ({hits[0].match if hits else ''})")
        print(f"top-1: words alone {words}/{len(LABELLED)}, words + meaning {fused}/{len(LABELLED)}; "
              f"{returned / len(LABELLED):.2f} results per question")  # fmt: skip


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--characters", type=int, default=1000)
    p.add_argument("--observations", type=int, default=100_000)
    p.add_argument("--runs", type=int, default=200)
    p.add_argument("--retrieval", action="store_true", help="search quality on the labelled set instead of latency")
    p.add_argument("--db", help="latency on an empty PostgreSQL database (postgresql://...) instead of a new SQLite file")
    args = p.parse_args()
    retrieval(args) if args.retrieval else latency(args)


if __name__ == "__main__":
    main()
