"""Where a run's memory goes: RSS after each part is loaded and used once, in one process.

    python tools/memory_parts.py

Loads what `streamer run` loads (the face pack, the voice models with ASR) and runs each model once
(the recognizer on a batch of 32 crops, as the embedder sends at most: random pixels, since what it
holds depends on the shapes only; the speaker turns of a 30 s segment, the speaker model on a 15 s
turn (the longest a turn is cut to) and ASR on the bundled conversation), then one re-clustering
of as many track means as it takes at most (random vectors: its memory follows their number) and
the re-clustering buffers (all their memory is taken at the first face or turn),
printing per step the highest RSS while it ran, the RSS after it, and the RSS once freed pages are
handed back (streamer.native_memory).
The soak (tools/soak.py) measures the whole process over time; this shows which part holds what.
Memory is measured here, never asserted in tests.
"""

from __future__ import annotations

import logging

import numpy as np

from streamer.native_memory import cap_arenas, release_free_memory

MB = 1024 * 1024


def status_mb(key: str) -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1]) / 1024
    return 0.0


def reset_peak() -> None:
    """Linux: the peak RSS (VmHWM) starts again from the RSS now."""
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")


def main() -> None:
    logging.basicConfig(level=logging.WARNING)
    cap_arenas()
    rows: list[tuple[str, float, float, float]] = []

    def step(name: str) -> None:
        peak, held = status_mb("VmHWM"), status_mb("VmRSS")
        release_free_memory()
        rows.append((name, peak, held, status_mb("VmRSS")))
        reset_peak()

    step("start")
    import streamer.app  # noqa: F401, PLC0415 - what a run imports
    from streamer.config import Config  # noqa: PLC0415
    from streamer.demo.speech import load_conversation  # noqa: PLC0415
    from streamer.faces.models import load_pack  # noqa: PLC0415
    from streamer.voice_analyzer import load_voice_models  # noqa: PLC0415
    from streamer.voices.turns import TurnSplitter  # noqa: PLC0415
    from streamer.voices.vad import SpeechSegment  # noqa: PLC0415

    step("imports of a run")
    cfg = Config()
    pack = load_pack(cfg.models)
    step("face pack loaded")
    faces = np.random.default_rng(0).random((32, 3, 112, 112), dtype=np.float32)
    session = pack.recognizer.session
    session.run(None, {session.get_inputs()[0].name: faces})
    step("recognizer, one batch of 32 faces")
    models = load_voice_models(cfg.voices, cfg.asr)
    step("voice models and ASR loaded")
    talk = load_conversation()
    speech = talk.samples.astype(np.float32)
    TurnSplitter(cfg.voices.turns, models.embedder).split(SpeechSegment(0.0, 30.0, speech[: 30 * talk.rate]))
    step("speaker turns of a 30 s segment")
    voice = models.embedder.embed(speech[: 15 * talk.rate])[None]
    step("speaker model on a 15 s turn")
    assert models.transcriber is not None
    models.transcriber.transcribe([speech[: 5 * talk.rate], speech[5 * talk.rate : 8 * talk.rate]])
    step("ASR on two turns (5 s, 3 s)")
    from memory.config import ReclusterConfig  # noqa: PLC0415
    from memory.recluster import MAX_TRACKS, FaceBuffer, cluster  # noqa: PLC0415

    means = np.random.default_rng(0).standard_normal((MAX_TRACKS, 512), dtype=np.float32)
    means /= np.linalg.norm(means, axis=1, keepdims=True)
    cluster(means, ReclusterConfig())
    step(f"re-clustering of {MAX_TRACKS} track means")
    faces_kept, turns_kept = cfg.memory.recluster.buffer_size, cfg.memory.voice_recluster.buffer_size
    buffers = [FaceBuffer(faces_kept), FaceBuffer(turns_kept)]
    buffers[0].add(1, means[:1], np.ones(1, np.float32))
    buffers[1].add(2, voice, np.ones(1, np.float32))
    step(f"re-clustering buffers ({faces_kept} faces, {turns_kept} turns)")
    print(f"{'step':48} {'peak':>8} {'RSS after':>10} {'after trim':>11}")
    for name, peak, held, trimmed in rows:
        print(f"{name:48} {peak:5.0f} MB {held:7.0f} MB {trimmed:8.0f} MB")


if __name__ == "__main__":
    main()
