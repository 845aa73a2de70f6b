"""Observations on the bus: versioned, compact, and each with an id that makes redelivery harmless.

A message is `MAGIC | version (u8) | header length (u32 LE) | JSON header | binary parts`. The
header names the kind, the sender and the stream, and the byte length of each part; arrays travel
as packed little-endian records and embeddings as float16 (half the bytes, far below the matching
thresholds' resolution). The id is (source, n): a source is one worker process's one stream, and n
counts its messages from 1, so the memory service applies each (source, n) once, in order.
"""

from __future__ import annotations

import json
import math
import struct
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from memory.records import FaceObservation, SpeakerEvidence, SpeechTurn, TrackEvidence

MAGIC = b"LMSB"
VERSION = 1
_PREFIX = struct.Struct("<4sBI")

FACE = np.dtype([("track", "<i8"), ("box", "<i4", (4,)), ("det", "<f4"), ("quality", "<f4"), ("ortho", "u1")])
EVIDENCE = np.dtype(
    [("track", "<i8"), ("quality", "<f4"), ("det", "<f4"), ("good", "u1"), ("crop_quality", "<f4"), ("crop_len", "<u4")]
)
TURN = np.dtype(
    [("track", "<i8"), ("t_start", "<f8"), ("t_end", "<f8"), ("wall", "<f8"), ("good", "u1"), ("embedded", "u1")]
)


class BadMessage(ValueError):
    """Not one of ours, or of a version this build cannot read."""


@dataclass
class Message:
    source: str  # "<worker>/<stream>": one worker process's one stream
    n: int  # 1, 2, ... per source
    worker: str
    stream: str


@dataclass
class FacesMsg(Message):
    """One analysed frame: every face with its box and score, and embeddings of the tracks that fell due."""

    t: float = 0.0
    wall_time: float = 0.0
    observations: list[FaceObservation] = field(default_factory=list)
    evidence: list[TrackEvidence] = field(default_factory=list)

    @property
    def track_ids(self) -> list[int]:
        return [o.track_id for o in self.observations]


@dataclass
class TurnsMsg(Message):
    turns: list[SpeechTurn] = field(default_factory=list)
    final: bool = False  # no transcripts will follow (no ASR on the worker)


@dataclass
class TextsMsg(Message):
    texts: list[tuple[int, str | None]] = field(default_factory=list)


@dataclass
class SyncMsg(Message):
    evidence: SpeakerEvidence | None = None


@dataclass
class EndMsg(Message):
    still: bool = False  # the stream was a single photo


AnyMsg = FacesMsg | TurnsMsg | TextsMsg | SyncMsg | EndMsg


def _pack(header: dict[str, object], parts: list[bytes]) -> bytes:
    header["parts"] = [len(p) for p in parts]
    head = json.dumps(header, separators=(",", ":")).encode()
    return b"".join([_PREFIX.pack(MAGIC, VERSION, len(head)), head, *parts])


def _base(kind: str, m: Message) -> dict[str, object]:
    return {"k": kind, "src": m.source, "n": m.n, "w": m.worker, "s": m.stream}


def encode(m: AnyMsg) -> bytes:
    if isinstance(m, FacesMsg):
        return _encode_faces(m)
    if isinstance(m, TurnsMsg):
        return _encode_turns(m)
    if isinstance(m, TextsMsg):
        return _pack({**_base("text", m), "texts": m.texts}, [])
    if isinstance(m, SyncMsg):
        assert m.evidence is not None
        sync = {str(k): v for k, v in m.evidence.sync.items()}
        return _pack({**_base("sync", m), "turn": m.evidence.turn, "sync": sync}, [])
    return _pack({**_base("end", m), "still": m.still}, [])


def _encode_faces(m: FacesMsg) -> bytes:
    faces = np.zeros(len(m.observations), FACE)
    for i, o in enumerate(m.observations):
        faces[i] = (o.track_id, o.bbox, o.det_score, math.nan if o.quality is None else o.quality, o.face_type == "ortho")
    ev = np.zeros(len(m.evidence), EVIDENCE)
    crops: list[bytes] = []
    for i, e in enumerate(m.evidence):
        crop = e.crop_jpeg or b""
        ev[i] = (e.track_id, e.qualities[0], e.det_scores[0], bool(e.good[0]), e.crop_quality, len(crop))
        crops.append(crop)
    vectors = np.concatenate([e.embeddings[:1] for e in m.evidence]) if m.evidence else np.zeros((0, 0), np.float32)
    header = {**_base("faces", m), "t": m.t, "wall": m.wall_time, "dim": int(vectors.shape[1]) if len(vectors) else 0}
    return _pack(header, [faces.tobytes(), ev.tobytes(), vectors.astype("<f2").tobytes(), b"".join(crops)])


def _encode_turns(m: TurnsMsg) -> bytes:
    rows = np.zeros(len(m.turns), TURN)
    dims = {len(t.embedding) for t in m.turns if t.embedding is not None}
    dim = dims.pop() if dims else 0
    vectors = np.zeros((len(m.turns), dim), "<f2")
    for i, t in enumerate(m.turns):
        rows[i] = (t.track_id, t.t_start, t.t_end, t.wall_time, t.good, t.embedding is not None)
        if t.embedding is not None:
            vectors[i] = t.embedding
    header = {**_base("turns", m), "final": m.final, "dim": dim}
    return _pack(header, [rows.tobytes(), vectors.tobytes()])


@dataclass
class FacesRows:
    """A faces message parsed into plain rows, which pickle cheaply: the memory service's intake
    process parses, the memory's process builds the records (`build`)."""

    base: tuple[str, int, str, str]  # source, n, worker, stream
    t: float
    wall: float
    faces: list[tuple[int, tuple[int, int, int, int], float, float, int]]  # FACE rows
    evidence: list[tuple[int, float, float, int, float, int]] | None = None  # EVIDENCE rows; None: no embedding
    vectors: npt.NDArray[np.float32] | None = None  # (len(evidence), dim), unit length
    crops: bytes = b""


Parsed = FacesRows | TurnsMsg | TextsMsg | SyncMsg | EndMsg


def decode(data: bytes) -> AnyMsg:
    """Raises BadMessage for anything that is not a well-formed message of this version."""
    return build(parse(data))


def parse(data: bytes) -> Parsed:
    """A message checked and parsed; faces (nearly all messages) as plain rows. Raises BadMessage."""
    try:
        magic, version, head_len = _PREFIX.unpack_from(data)
    except struct.error:
        raise BadMessage("too short for a message") from None
    if magic != MAGIC:
        raise BadMessage("not a streamer message")
    if version != VERSION:
        raise BadMessage(f"message version {version}, this build reads {VERSION}")
    try:
        start = _PREFIX.size + head_len
        h = json.loads(data[_PREFIX.size : start])
        parts, offset = [], start
        for size in h["parts"]:
            parts.append(data[offset : offset + size])
            offset += size
        if offset != len(data):
            raise BadMessage("parts do not add up to the message")
        base = dict(source=str(h["src"]), n=int(h["n"]), worker=str(h["w"]), stream=str(h["s"]))
        return _parse_kind(h, base, parts)
    except BadMessage:
        raise
    except (ValueError, KeyError, TypeError, IndexError) as e:
        raise BadMessage(f"malformed message: {e}") from None


def _parse_kind(h: dict[str, object], base: dict[str, object], parts: list[bytes]) -> Parsed:
    kind = h["k"]
    if kind == "faces":
        return _parse_faces(h, base, parts)
    if kind == "turns":
        return _decode_turns(h, base, parts)
    if kind == "text":
        texts = [(int(t), None if s is None else str(s)) for t, s in h["texts"]]  # type: ignore[attr-defined]
        return TextsMsg(**base, texts=texts)  # type: ignore[arg-type]
    if kind == "sync":
        sync = {int(k): float(v) for k, v in h["sync"].items()}  # type: ignore[attr-defined]
        return SyncMsg(**base, evidence=SpeakerEvidence(int(h["turn"]), sync))  # type: ignore[arg-type, call-overload]
    if kind == "end":
        return EndMsg(**base, still=bool(h["still"]))  # type: ignore[arg-type]
    raise BadMessage(f"unknown message kind {kind!r}")


def _parse_faces(h: dict[str, object], base: dict[str, object], parts: list[bytes]) -> FacesRows:
    f = np.frombuffer(parts[0], FACE)
    faces = list(zip(f["track"].tolist(), map(tuple, f["box"].tolist()), f["det"].tolist(), f["quality"].tolist(), f["ortho"].tolist()))
    m = FacesRows((str(base["source"]), int(base["n"]), str(base["worker"]), str(base["stream"])),  # type: ignore[call-overload]
                  float(h["t"]), float(h["wall"]), faces)  # type: ignore[arg-type]  # fmt: skip
    if parts[1]:  # most frames carry no embedding (a track is embedded every few seconds)
        ev = np.frombuffer(parts[1], EVIDENCE)
        vectors = np.frombuffer(parts[2], "<f2").reshape(len(ev), int(h["dim"])).astype(np.float32)  # type: ignore[call-overload]
        # float16 rounding moved the vectors off the unit sphere
        vectors /= np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
        m.evidence, m.vectors, m.crops = ev.tolist(), vectors, parts[3]
        if sum(row[5] for row in m.evidence) != len(m.crops):
            raise BadMessage("crop lengths do not add up")
    return m


def build(m: Parsed) -> AnyMsg:
    """The records of a parsed message (faces rows become FaceObservation and TrackEvidence)."""
    if not isinstance(m, FacesRows):
        return m
    source, n, worker, stream = m.base
    t, wall = m.t, m.wall
    observations = [
        FaceObservation(stream, track, t, wall, box, det, None if quality != quality else quality,  # NaN: none
                        "ortho" if ortho else "side")
        for track, box, det, quality, ortho in m.faces
    ]  # fmt: skip
    evidence, offset = [], 0
    for i, (track, quality, det, good, crop_quality, crop_len) in enumerate(m.evidence or ()):
        crop = m.crops[offset : offset + crop_len]
        offset += crop_len
        assert m.vectors is not None
        evidence.append(
            TrackEvidence(stream, track, t, wall, m.vectors[i : i + 1], np.array([quality], np.float32),
                          np.array([det], np.float32), np.array([bool(good)]), crop or None, crop_quality)
        )  # fmt: skip
    return FacesMsg(source, n, worker, stream, t, wall, observations, evidence)


def _decode_turns(h: dict[str, object], base: dict[str, object], parts: list[bytes]) -> TurnsMsg:
    rows = np.frombuffer(parts[0], TURN)
    vectors = np.frombuffer(parts[1], "<f2").reshape(len(rows), int(h["dim"])).astype(np.float32)  # type: ignore[call-overload]
    turns = []
    for row, vec in zip(rows, vectors):
        embedding = vec / max(float(np.linalg.norm(vec)), 1e-12) if row["embedded"] else None
        turns.append(SpeechTurn(str(base["stream"]), int(row["track"]), float(row["t_start"]), float(row["t_end"]),
                                float(row["wall"]), embedding, bool(row["good"])))  # fmt: skip
    return TurnsMsg(**base, turns=turns, final=bool(h["final"]))  # type: ignore[arg-type]
