"""Speed and diarization quality of the voice path on real multi-speaker speech with a reference RTTM.

    python tools/bench_voices.py                      # the pyannote sample (2 speakers, 30 s)
    python tools/bench_voices.py RTTM... --audio-dir DIR [--seconds 30]   # every file named in the RTTMs
    python tools/bench_voices.py --thresholds 0.3,0.4,0.5 --change-thresholds 0.25,0.3,0.35
    python tools/bench_voices.py --no-asr --recluster 24   # + turn cosines, and 24 loops through the memory

Per stage (VAD, turn splitting + embedding, ASR): seconds and real-time factor. Then, per threshold,
an online clustering that follows the memory's rule for voices (a turn joins the node with the best
mean cosine to its stored embeddings if it reaches the threshold, else a good turn founds a node;
only good turns are stored, at most 20 per node), scored against the RTTM over speech time:
BCubed precision / recall / F over single-speaker reference time, coverage (reference speech covered
by a turn that got a node), and nodes per speaker. Each file is its own memory.

With --recluster LOOPS: the cosines between good turns of one file (same speaker or not; clean
turns, at least 90% one speaker, short or long, or turns with another voice in them); how often
re-clustering's voice merge test passes on groups of them (one speaker's, two speakers'); then the
first file looped LOOPS times as one live sound track through the real memory with its default
settings, ticked after every turn (so re-clustering runs as it does live): the voice nodes each
speaker's turns ended on, the merges, and how the two biggest voices agree (recluster.agreement).
"""

from __future__ import annotations

import argparse
import logging
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))  # real speech helpers

from support.speech import SpeakerSpan, pyannote_sample_files, read_audio, read_rttm, speaker_of  # noqa: E402

from bcubed import bcubed  # noqa: E402

from memory import Memory, MemoryConfig, NodeKind, SpeechTurn  # noqa: E402
from memory.policy import VoicePolicy  # noqa: E402
from memory.recluster import agreement  # noqa: E402

from streamer.records import SAMPLE_RATE  # noqa: E402
from streamer.voices.asr import Transcriber  # noqa: E402
from streamer.voices.config import AsrConfig, VoicesConfig  # noqa: E402
from streamer.voices.speaker import SpeakerEmbedder  # noqa: E402
from streamer.voices.turns import Turn, TurnSplitter  # noqa: E402
from streamer.voices.vad import SpeechSegment, StreamingVad, load_silero  # noqa: E402

FRAME = 0.01  # seconds per scoring frame
FEED = 0.02  # seconds per chunk fed to the VAD, like a live decoder


@dataclass
class Clip:
    name: str
    samples: npt.NDArray[np.float32]
    spans: list[SpeakerSpan]


def load_clips(rttms: list[str], audio_dir: str | None, seconds: float | None) -> list[Clip]:
    if not rttms:
        wav, rttm = pyannote_sample_files()
        return [Clip("sample", read_audio(wav), read_rttm(rttm.read_text()))]
    clips = []
    for path in rttms:
        by_uri: dict[str, list[SpeakerSpan]] = {}
        for line in Path(path).read_text().splitlines():
            if line.strip():
                by_uri.setdefault(line.split()[1], []).extend(read_rttm(line))
        for uri, spans in sorted(by_uri.items()):
            wav = Path(audio_dir or Path(path).parent) / f"{uri}.wav"
            if not wav.is_file():
                print(f"skipped {uri}: no {wav}", file=sys.stderr)
                continue
            x = read_audio(wav)
            clips.append(Clip(uri, x[: int(seconds * SAMPLE_RATE)] if seconds else x, spans))
    return clips


def run_vad(cfg: VoicesConfig, x: npt.NDArray[np.float32], session: object) -> list[SpeechSegment]:
    vad = StreamingVad(cfg.vad, session)  # type: ignore[arg-type]
    step = int(FEED * SAMPLE_RATE)
    out = []
    for i in range(0, len(x), step):
        out += vad.feed(x[i : i + step], i / SAMPLE_RATE)
    return out + vad.flush()


def cluster(turns: list[Turn], threshold: float, capacity: int = 20) -> list[int | None]:
    """Node per turn under the memory's matching rule (mean cosine to a node's stored embeddings)."""
    nodes: list[list[npt.NDArray[np.float32]]] = []
    out: list[int | None] = []
    for turn in turns:
        node = None
        if turn.embedding is not None and nodes:
            scores = [float(np.mean(np.stack(embs) @ turn.embedding)) for embs in nodes]
            best = int(np.argmax(scores))
            node = best if scores[best] >= threshold else None
        if node is None and turn.good:
            nodes.append([])
            node = len(nodes) - 1
        if node is not None and turn.good:
            nodes[node] = (nodes[node] + [turn.embedding])[-capacity:]  # type: ignore[list-item]
        out.append(node)
    return out


def frames_of(spans: list[SpeakerSpan], n: int) -> npt.NDArray[np.int64]:
    """Reference label per frame: speaker index, -1 silence, -2 overlap."""
    names = sorted({s.speaker for s in spans})
    ref = np.full(n, -1)
    for s in spans:
        a, b = int(s.start / FRAME), min(int(s.end / FRAME), n)
        k = names.index(s.speaker)
        seg = ref[a:b]
        seg[(seg != -1) & (seg != k)] = -2
        seg[seg == -1] = k
    return ref


def score(clip: Clip, turns: list[Turn], nodes: list[int | None]) -> dict[str, float]:
    n = int(len(clip.samples) / SAMPLE_RATE / FRAME)
    ref = frames_of(clip.spans, n)
    hyp = np.full(n, -1)
    for turn, node in zip(turns, nodes):
        if node is not None:
            hyp[int(turn.t_start / FRAME) : int(turn.t_end / FRAME)] = node
    speech = ref != -1
    both = (ref >= 0) & (hyp >= 0)
    r, h = ref[both], hyp[both]
    joint = np.zeros((r.max(initial=0) + 1, h.max(initial=0) + 1))
    np.add.at(joint, (r, h), 1)
    total = joint.sum()
    precision, recall = bcubed(joint)
    return {
        "frames": float(total),
        "precision": precision,
        "recall": recall,
        "coverage": float((speech & (hyp >= 0)).sum() / max(speech.sum(), 1)),
        "speakers": float(len({s.speaker for s in clip.spans})),
        "nodes": float(len({x for x in nodes if x is not None})),
    }


def who(turn: Turn, spans: list[SpeakerSpan]) -> tuple[str | None, float]:
    return speaker_of({"t_start": turn.t_start, "t_end": turn.t_end}, spans)


def turn_cosines(clips: list[Clip], turns: list[list[Turn]]) -> None:
    """Cosines between good turns of the same file, by kind of pair."""
    kinds: dict[str, list[float]] = {}
    for clip, ts in zip(clips, turns):
        rows = [(t, *who(t, clip.spans)) for t in ts if t.good]
        for i, (a, sa, qa) in enumerate(rows):
            for b, sb, qb in rows[i + 1 :]:
                clean = min(qa, qb) >= 0.9
                length = "long (>= 2 s)" if min(a.duration, b.duration) >= 2 else "short (one < 2 s)"
                kind = f"{'same' if sa == sb else 'different'} speaker, {'clean ' + length if clean else 'another voice in one'}"
                kinds.setdefault(kind, []).append(float(a.embedding @ b.embedding))  # type: ignore[operator]
    print("\ncosine between good turns of one file           pairs   mean    p10    p50    p90    max")
    for kind, v in sorted(kinds.items()):
        x = np.array(v)
        print(f"{kind:46s} {len(x):6d} {x.mean():6.2f} {np.percentile(x, 10):6.2f} {np.median(x):6.2f} "
              f"{np.percentile(x, 90):6.2f} {x.max():6.2f}")  # fmt: skip


def merge_decisions(clips: list[Clip], turns: list[list[Turn]], splits: int = 200) -> None:
    """How often re-clustering's voice test (memory.policy.VoicePolicy) would merge groups of real turns:
    one speaker's turns split at random in two (each with merge_min_turns at least), or one of them
    against the rest (it should merge), and two speakers of one file, all their turns or any one
    turn against the other's (it must not)."""
    policy, rng = VoicePolicy(MemoryConfig()), np.random.default_rng(0)
    same: dict[str, list[bool]] = {"split in two": [], "one turn, the rest": []}
    different: dict[str, list[bool]] = {"all turns each": [], "one turn, all the other's": []}
    for clip, ts in zip(clips, turns):
        by: dict[str, list[npt.NDArray[np.float32]]] = {}
        for t in ts:
            speaker, share = who(t, clip.spans)
            if t.good and speaker is not None and share >= 0.7:
                by.setdefault(speaker, []).append(t.embedding)  # type: ignore[arg-type]
        groups = {k: np.stack(v) for k, v in by.items()}
        least = policy.cfg.voice_recluster.merge_min_turns  # fewer turns on both sides never merge
        for g in groups.values():
            if len(g) >= 2 * least:
                for _ in range(splits):
                    order = rng.permutation(len(g))
                    k = int(rng.integers(least, len(g) - least + 1))
                    same["split in two"].append(policy.same_voice(g[order[:k]], g[order[k:]]))
            if len(g) > least:
                same["one turn, the rest"] += [policy.same_voice(g[i : i + 1], np.delete(g, i, axis=0)) for i in range(len(g))]
        for a, ga in groups.items():
            for b, gb in groups.items():
                if a < b:
                    different["all turns each"].append(policy.same_voice(ga, gb))
                if a != b:
                    different["one turn, all the other's"] += [policy.same_voice(ga[i : i + 1], gb) for i in range(len(ga))]
    print("\nvoice merge test on groups of good turns (>= 70% one speaker's)      cases  merged")
    for name, table in (("same speaker", same), ("different speakers", different)):
        for kind, v in table.items():
            print(f"{name + ', ' + kind:66s} {len(v):6d}  {np.mean(v) if v else float('nan'):6.1%}")


class _Count(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.n = 0

    def emit(self, record: logging.LogRecord) -> None:
        self.n += "re-clustered" in record.getMessage() and "voice" in record.getMessage()


def loop_through_memory(clip: Clip, loops: int, cfg: VoicesConfig, session: object, splitter: TurnSplitter) -> None:
    """The clip looped as one live sound track, each turn into a real memory, ticked after each turn."""
    length = len(clip.samples) / SAMPLE_RATE
    spans = [SpeakerSpan(s.start + k * length, s.end + k * length, s.speaker) for k in range(loops) for s in clip.spans]
    segments = run_vad(cfg, np.tile(clip.samples, loops), session)
    turns = [turn for seg in segments for turn in splitter.split(seg)]
    runs = _Count()
    logging.getLogger("memory.edits").addHandler(runs)
    logging.getLogger("memory.edits").setLevel(logging.INFO)
    now = [0.0]
    with tempfile.TemporaryDirectory() as tmp, Memory(MemoryConfig(db=f"{tmp}/memory.db"), clock=lambda: now[0]) as memory:
        nodes: dict[str, Counter[int | None]] = {}
        ids = []
        for turn in turns:
            now[0] = turn.t_end
            ids.append(memory.new_track_id())
            memory.add_turn(SpeechTurn("loop", ids[-1], turn.t_start, turn.t_end, now[0], turn.embedding, turn.good))
            memory.tick()
        held: dict[int | None, list[npt.NDArray[np.float32]]] = {}  # good turns per voice node, at the end
        for turn, track in zip(turns, ids):
            if turn.good:
                node = memory.node_of_track(track)
                held.setdefault(node, []).append(turn.embedding)  # type: ignore[arg-type]
                speaker, share = who(turn, spans)
                if speaker is not None and share >= 0.7:
                    nodes.setdefault(speaker, Counter())[node] += 1
        memory.flush()
        merges = [e.data for e in memory.events_after(0, limit=1_000_000) if e.type == "node.merged" and e.data["kind"] == "voice"]
        voices = sorted((n.id for n in memory.nodes(NodeKind.VOICE)), key=lambda n: -len(held.get(n, [])))
        print(f"\n{clip.name} looped {loops}x ({loops * length / 60:.1f} min): {len(turns)} turns, {runs.n} re-clusterings, "
              f"{len(merges)} voice merges {[(m['from'], m['into']) for m in merges]}")  # fmt: skip
        for speaker, counts in sorted(nodes.items()):
            print(f"  {speaker}: good turns (>= 70% theirs) per voice node {dict(counts.most_common())}")
        if len(voices) >= 2:
            across, within = agreement(np.stack(held[voices[0]]), np.stack(held[voices[1]]), 2)
            print(f"  two biggest voices, all their good turns: median cosine across {across:.2f}, within {within:.2f}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("rttm", nargs="*", help="reference RTTM files (default: the pyannote sample)")
    ap.add_argument("--audio-dir", help="folder holding <uri>.wav (default: beside each RTTM)")
    ap.add_argument("--seconds", type=float, help="score only the first SECONDS of each file (its annotated part)")
    ap.add_argument("--thresholds", default="0.3,0.35,0.4,0.45,0.5", help="matching thresholds to score")
    ap.add_argument("--change-thresholds", help="turn change thresholds to compare (default: the configured one)")
    ap.add_argument("--no-asr", action="store_true", help="skip the ASR stage")
    ap.add_argument("--recluster", type=int, default=0, metavar="LOOPS", help="turn cosines, then the first file looped LOOPS times through the memory")
    args = ap.parse_args()

    clips = load_clips(args.rttm, args.audio_dir, args.seconds)
    audio_s = sum(len(c.samples) for c in clips) / SAMPLE_RATE
    cfg = VoicesConfig()
    session, embedder = load_silero(), SpeakerEmbedder(threads=cfg.threads)
    t = time.perf_counter()
    segments = [run_vad(cfg, c.samples, session) for c in clips]
    vad_s = time.perf_counter() - t
    print(f"{len(clips)} file(s), {audio_s:.0f} s of audio, {sum(map(len, segments))} VAD segments")
    print(f"VAD        {vad_s:7.2f} s  RTF {vad_s / audio_s:.4f}")

    changes = [float(v) for v in args.change_thresholds.split(",")] if args.change_thresholds else [cfg.turns.change_threshold]
    results = {}
    for change in changes:
        splitter = TurnSplitter(cfg.turns.model_copy(update={"change_threshold": change}), embedder)
        t = time.perf_counter()
        turns = [[turn for seg in segs for turn in splitter.split(seg)] for segs in segments]
        emb_s = time.perf_counter() - t
        n_turns, n_good = sum(map(len, turns)), sum(tr.good for ts in turns for tr in ts)
        print(f"turns+emb  {emb_s:7.2f} s  RTF {emb_s / audio_s:.4f}  (change {change}: {n_turns} turns, {n_good} good)")
        results[change] = turns

    if not args.no_asr:
        transcriber = Transcriber(AsrConfig())
        turns = results[changes[0]]
        t = time.perf_counter()
        texts = [transcriber.transcribe([tr.samples for tr in ts]) for ts in turns]
        asr_s = time.perf_counter() - t
        words = sum(len(x.split()) for ts in texts for x in ts if x)
        print(f"ASR        {asr_s:7.2f} s  RTF {asr_s / audio_s:.4f}  ({transcriber.calls} calls, {words} words)")

    print("\nchange  match   BCubed P     R     F  coverage  nodes/speakers")
    for change, turns in results.items():
        for threshold in [float(v) for v in args.thresholds.split(",")]:
            rows = [score(c, ts, cluster(ts, threshold)) for c, ts in zip(clips, turns)]
            w = np.array([r["frames"] for r in rows])
            p = float(np.average([r["precision"] for r in rows], weights=w))
            r_ = float(np.average([r["recall"] for r in rows], weights=w))
            f = 2 * p * r_ / (p + r_) if p + r_ else 0.0
            cov = float(np.mean([r["coverage"] for r in rows]))
            ratio = sum(r["nodes"] for r in rows) / sum(r["speakers"] for r in rows)
            print(f"{change:6.2f}  {threshold:5.2f}   {p:8.3f} {r_:5.3f} {f:5.3f}  {cov:8.3f}  {ratio:5.2f}")

    if args.recluster:
        turn_cosines(clips, results[changes[0]])
        merge_decisions(clips, results[changes[0]])
        loop_through_memory(clips[0], args.recluster, cfg, session, TurnSplitter(cfg.turns, embedder))


if __name__ == "__main__":
    main()
