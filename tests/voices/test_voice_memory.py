"""Voice identities from real speech through the whole voice path (VAD -> turns -> CAM++ -> memory),
with re-clustering: two people must never become one voice, one voice split in two must heal."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
from support.scenario import START, Clock
from support.speech import FESTIVAL_VOICES, Recording, SpeakerSpan, festival_sentence, speaker_of

from memory import Memory, MemoryConfig, NodeKind, NodeStatus, SpeechTurn
from streamer.records import SAMPLE_RATE
from streamer.voices.config import VoicesConfig
from streamer.voices.speaker import SpeakerEmbedder
from streamer.voices.turns import Turn, TurnSplitter
from streamer.voices.vad import StreamingVad

FEED = SAMPLE_RATE // 50  # 20 ms chunks, as a live decoder hands them over
PAUSE = np.zeros(SAMPLE_RATE, np.float32)
SENTENCES = (
    "We walked along the river until the sun went down behind the hills.",
    "The meeting has been moved to Thursday afternoon at three o'clock.",
    "Our train leaves the station at seven fifteen, so do not be late.",
    "I would like a cup of coffee with milk and no sugar, thank you.",
    "Please remember to bring your umbrella because it may rain tomorrow.",
    "She sells sea shells by the sea shore every summer morning.",
    "Then everybody went home and had a long and quiet dinner together.",
)


def voice_path(parts: list[tuple[np.ndarray, str | list[SpeakerSpan]]], embedder: SpeakerEmbedder, silero: ort.InferenceSession
               ) -> tuple[list[Turn], list[SpeakerSpan]]:  # fmt: skip
    """Plays the parts one after another as one live sound track; a part is spoken by one named
    speaker, or by the speakers of its reference spans. Returns the turns and the reference."""
    cfg = VoicesConfig()
    vad, splitter = StreamingVad(cfg.vad, silero), TurnSplitter(cfg.turns, embedder)
    x = np.concatenate([p for p, _ in parts])
    truth, t = [], 0.0
    for samples, who in parts:
        if isinstance(who, str):
            truth.append(SpeakerSpan(t, t + len(samples) / SAMPLE_RATE, who))
        else:
            truth += [SpeakerSpan(s.start + t, s.end + t, s.speaker) for s in who]
        t += len(samples) / SAMPLE_RATE
    segments = [seg for i in range(0, len(x), FEED) for seg in vad.feed(x[i : i + FEED], i / SAMPLE_RATE)]
    return [turn for seg in segments + vad.flush() for turn in splitter.split(seg)], truth


def remember(memory: Memory, clock: Clock, turns: list[Turn]) -> list[int]:
    """Each turn into the memory at its stream time, with a tick after each (re-clustering when due)."""
    ids = []
    for turn in turns:
        clock.now = START + turn.t_end
        ids.append(memory.new_track_id())
        memory.add_turn(SpeechTurn("cam", ids[-1], turn.t_start, turn.t_end, clock.now, turn.embedding, turn.good))
        memory.tick()
    return ids


def voices_of(memory: Memory, turns: list[Turn], ids: list[int], truth: list[SpeakerSpan]) -> dict[str, Counter[int | None]]:
    """Per reference speaker, the voice nodes their good turns (those mostly theirs) ended on."""
    out: dict[str, Counter[int | None]] = {}
    for turn, track in zip(turns, ids):
        who, share = speaker_of({"t_start": turn.t_start, "t_end": turn.t_end}, truth)
        if who is not None and share >= 0.7 and turn.good:
            out.setdefault(who, Counter())[memory.node_of_track(track)] += 1
    return out


@pytest.fixture
def memory(tmp_path: Path) -> Iterator[tuple[Memory, Clock]]:
    clock = Clock()
    cfg = MemoryConfig(db=str(tmp_path / "memory.db"))
    cfg.voice_recluster.every_faces = 4  # re-cluster often: every few good turns
    with Memory(cfg, clock=clock) as m:
        yield m, clock


def test_a_looped_conversation_and_two_more_voices_stay_four_voices(
    sample: Recording, embedder: SpeakerEmbedder, silero: ort.InferenceSession, memory: tuple[Memory, Clock]
) -> None:
    m, clock = memory
    parts: list[tuple[np.ndarray, str | list[SpeakerSpan]]] = []
    for loop in range(12):  # 6 minutes; under a fixed floor of 0.4 the two speakers merged within one
        parts.append((sample.samples, sample.spans))
        if loop % 3 == 2:
            for voice in (FESTIVAL_VOICES[0], FESTIVAL_VOICES[2]):
                parts += [(festival_sentence(voice, SENTENCES[loop // 3]), voice), (PAUSE, [])]
    turns, truth = voice_path(parts, embedder, silero)
    ids = remember(m, clock, turns)
    m.flush()
    assert not [e for e in m.events_after(0, limit=100_000) if e.type == "node.merged"]
    found = voices_of(m, turns, ids, truth)
    assert set(found) == {*sample.speakers, FESTIVAL_VOICES[0], FESTIVAL_VOICES[2]}
    main = {who: nodes.most_common(1)[0][0] for who, nodes in found.items()}
    assert None not in main.values() and len(set(main.values())) == 4  # one voice each, no two shared
    for who, nodes in found.items():  # and nearly all of a speaker's turns on it
        assert nodes[main[who]] >= 0.8 * sum(nodes.values()), (who, nodes)
    assert {n.id for n in m.nodes(NodeKind.VOICE) if n.status == NodeStatus.CONFIRMED} >= set(main.values())


def test_one_voice_split_into_two_nodes_is_merged_back(
    embedder: SpeakerEmbedder, silero: ort.InferenceSession, memory: tuple[Memory, Clock]
) -> None:
    m, clock = memory
    m.cfg.voice_recluster.every_faces = 1_000  # re-clustered once, by hand, at the end
    m.cfg.voice_recluster.every_seconds = 1e9
    a, b = FESTIVAL_VOICES[0], FESTIVAL_VOICES[2]

    def talk(sentences: tuple[str, ...], t0: float) -> tuple[list[Turn], list[SpeakerSpan]]:
        parts = [p for s in sentences for v in (a, b) for p in ((festival_sentence(v, s), v), (PAUSE, []))]
        turns, truth = voice_path(parts, embedder, silero)
        return [Turn(t.t_start + t0, t.t_end + t0, t.samples, t.embedding, t.good) for t in turns], [
            SpeakerSpan(s.start + t0, s.end + t0, s.speaker) for s in truth]  # fmt: skip

    first, truth = talk(SENTENCES[:4], 0.0)
    again, later = talk(SENTENCES[4:], truth[-1].end + 60.0)
    truth += later
    ids = remember(m, clock, first)
    # Later, matching fails for a while (each turn becomes a voice of its own), and those turns are
    # gathered by hand into one voice per speaker: each speaker now has two voice nodes.
    m.cfg.audio_matching_threshold = 0.95
    ids += remember(m, clock, again)
    later_nodes = voices_of(m, again, ids[len(first) :], later)
    for nodes in later_nodes.values():
        keep, *others = sorted(nodes)
        for other in others:
            m.merge(keep, other)
    m.cfg.audio_matching_threshold = MemoryConfig().audio_matching_threshold
    before = voices_of(m, first + again, ids, truth)
    assert all(len(nodes) == 2 and None not in nodes for nodes in before.values()), before
    m.recluster(NodeKind.VOICE)
    after = voices_of(m, first + again, ids, truth)
    assert all(len(nodes) == 1 for nodes in after.values()), after
    assert set(after[a]) != set(after[b])
    assert len(m.nodes(NodeKind.VOICE)) == 2
