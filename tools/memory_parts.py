"""Where a run's memory goes: RSS after each part is loaded and used once, in one process.

    python tools/memory_parts.py

Loads what `streamer run` loads (the face pack, the voice models with ASR) and runs each model
once (the recognizer on a batch of 32 crops, as the embedder sends at most: random pixels, since
what it holds depends on the shapes only; the speaker model and ASR on the bundled conversation),
printing RSS after each step and again after freed pages are handed back (streamer.native_memory).
The soak (tools/soak.py) measures the whole process over time; this shows which part holds what. Memory is measured here, never asserted in tests.
"""

from __future__ import annotations

import logging

import numpy as np

from streamer.native_memory import cap_arenas, release_free_memory

MB = 1024 * 1024


def rss_mb() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def main() -> None:
    logging.basicConfig(level=logging.WARNING)
    cap_arenas()
    rows: list[tuple[str, float, float]] = []

    def step(name: str) -> None:
        held = rss_mb()
        release_free_memory()
        rows.append((name, held, rss_mb()))

    step("start")
    import streamer.app  # noqa: F401, PLC0415 - what a run imports
    from streamer.config import Config  # noqa: PLC0415
    from streamer.demo.speech import load_conversation  # noqa: PLC0415
    from streamer.faces.models import load_pack  # noqa: PLC0415
    from streamer.voice_analyzer import load_voice_models  # noqa: PLC0415

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
    models.embedder.embed(speech[: 30 * talk.rate])
    step("speaker model on a 30 s turn")
    assert models.transcriber is not None
    models.transcriber.transcribe([speech[: 5 * talk.rate], speech[5 * talk.rate : 8 * talk.rate]])
    step("ASR on two turns (5 s, 3 s)")
    print(f"{'step':40} {'RSS after':>10} {'after trim':>11}")
    for name, held, trimmed in rows:
        print(f"{name:40} {held:8.0f} MB {trimmed:8.0f} MB")


if __name__ == "__main__":
    main()
