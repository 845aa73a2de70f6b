"""`streamer demo`: real people enter, leave and come back; watch the identities form."""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path

import numpy as np
import numpy.typing as npt

from tqdm.contrib.logging import logging_redirect_tqdm

from memory import Memory

from ..app import App, install_signal_handlers
from ..config import CameraConfig, Config
from ..faces.detector import FaceDetector
from ..faces.models import load_pack
from ..progress import Progress
from ..report import timeline_png
from .cast import load_cast
from .compose import Appearance, Cut, render_video
from .speech import Conversation, floor_holders, load_conversation
from .talking import talking_mouths

# Six people from the shipped photos. A and B overlap, A leaves and comes back; then a real recorded
# conversation between two people, heard twice, shown as hard cuts between two talking heads (E and F)
# that follow who holds the floor, their lips moving with their own voices; then A once more.
A, B, C, D, E, F = 0, 1, 6, 3, 4, 5
TALK_AT = 20.0  # video second where the conversation starts
TALK_FROM = 6.0  # ...taken from this second of the recording (before it, the line is silent)
TALK_PASSES = 2  # a face is tied to a voice after a few turns of evidence: one pass has too few


def demo_script(conversation: Conversation) -> tuple[list[Appearance | Cut], npt.NDArray[np.float32], float]:
    """The demo's scenes, its soundtrack (silence, then the conversation under its talking heads) and
    the length of one pass of the conversation."""
    script: list[Appearance | Cut] = [
        Appearance(A, 0, 6, 0.3),
        Appearance(B, 2, 9, 0.7),
        Appearance(C, 9, 13, 0.5),
        Appearance(A, 13, 18, 0.25),
        Appearance(D, 14, 20, 0.75),
    ]
    head = dict(zip(conversation.speakers, (E, F)))
    spans = floor_holders(conversation.turns)
    talk = conversation.duration - TALK_FROM
    for p in range(TALK_PASSES):
        shift = TALK_AT + p * talk - TALK_FROM
        for k, span in enumerate(spans):
            start = shift + TALK_FROM if k == 0 else span.start + shift
            end = shift + conversation.duration if k == len(spans) - 1 else spans[k + 1].start + shift
            script.append(Cut(head[span.speaker], start, end))
    talk_end = TALK_AT + TALK_PASSES * talk
    script.append(Cut(A, talk_end, talk_end + 2))
    rate = conversation.rate
    audio = np.zeros(int((talk_end + 2) * rate), np.float32)
    once = conversation.samples[int(TALK_FROM * rate) :]
    for p in range(TALK_PASSES):
        at = int((TALK_AT + p * talk) * rate)
        audio[at : at + len(once)] = once
    return script, audio, talk


def run_demo(args: argparse.Namespace, cfg: Config) -> int:
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    video = out / "demo.mp4"
    pack = load_pack(cfg.models)
    print(f"building {video} from the photos shipped with the face models...", file=sys.stderr)
    detector = FaceDetector(pack.detector, cfg.models)
    cast = load_cast(detector)
    conversation = load_conversation()
    script, audio, talk = demo_script(conversation)
    speakers = dict(zip((E, F), conversation.speakers))
    mouths = talking_mouths(cast, detector, conversation, speakers, lambda t: TALK_FROM + (t - TALK_AT) % talk)
    render_video(video, cast, script, audio=audio, audio_rate=conversation.rate, animate=mouths)
    db = out / "memory.db" if args.db is None else Path(args.db)
    db.unlink(missing_ok=True)
    cfg = cfg.model_copy(update={"cameras": [CameraConfig(name="demo", url=str(video))]})
    cfg.memory.db = str(db)
    if cfg.mqtt.url is None:  # the demo publishes only to a broker the user names
        cfg.mqtt.enabled = False
    app = App(cfg, realtime=False, progress=Progress(enabled=not args.quiet))

    async def main() -> None:
        install_signal_handlers(app)
        with logging_redirect_tqdm():
            await app.run(pack)

    asyncio.run(main())
    with Memory(cfg.memory) as memory:
        picture = out / "timeline.png"
        drawn = timeline_png(memory, picture)
        people = len({item.person for item in script})
        print(f"\n{people} people appeared and {len(conversation.speakers)} of them spoke; the memory holds {drawn} identities:")
        spans: dict[int, list[float]] = {}
        for face in memory.export_faces():
            if face["node"] is not None:
                spans.setdefault(face["node"], []).append(face["t"])
        said: dict[int, list[str]] = {}
        for turn in memory.export_voices():
            if turn["node"] is not None:
                spans.setdefault(turn["node"], []).append(turn["t_start"])
                said.setdefault(turn["node"], []).append(turn["text"] or "")
        for node in memory.export_nodes():
            ts = spans.get(node["id"], [])
            when = f"from {min(ts):.1f} s to {max(ts):.1f} s" if ts else "not in this run"
            if node["kind"] == "face":
                print(f"  face_{node['id']}: {node['n_observations']} faces, seen {when}")
            else:
                words = " ".join(t for t in said.get(node["id"], []) if t)
                quote = f': "{words[:70]}..."' if len(words) > 70 else f': "{words}"' if words else ""
                print(f"  voice_{node['id']}: {len(said.get(node['id'], []))} turns, heard {when}{quote}")
        for character in memory.export_characters():
            members = [f"face_{n}" for n in character["faces"]] + [f"voice_{n}" for n in character["voices"]]
            print(f"  character_{character['id']}: {' + '.join(members)} (a face tied to its voice)")
        print(f"\ntimeline picture: {picture}\nmemory database:  {db}\nexport faces:     streamer export faces --db {db}")
        print(f"export voices:    streamer export voices --db {db}")
    return 0
