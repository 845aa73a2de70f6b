"""`streamer demo`: real people enter, leave and come back; watch the identities form."""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path

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

# Six people from the shipped photos. A and B overlap, A leaves and comes back, the last scenes are
# hard cuts between talking heads (a different person where the last one was), then A once more.
A, B, C, D, E, F = 0, 1, 6, 3, 4, 5
SCRIPT: list[Appearance | Cut] = [
    Appearance(A, 0, 6, 0.3),
    Appearance(B, 2, 9, 0.7),
    Appearance(C, 9, 13, 0.5),
    Appearance(A, 13, 18, 0.25),
    Appearance(D, 14, 20, 0.75),
    Cut(E, 20, 23),
    Cut(F, 23, 26),
    Cut(A, 26, 28),
]
PEOPLE = len({item.person for item in SCRIPT})


def run_demo(args: argparse.Namespace, cfg: Config) -> int:
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    video = out / "demo.mp4"
    pack = load_pack(cfg.models)
    print(f"building {video} from the photos shipped with the face models...", file=sys.stderr)
    cast = load_cast(FaceDetector(pack.detector, cfg.models))
    render_video(video, cast, SCRIPT)
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
        print(f"\n{PEOPLE} people appeared; the memory holds {drawn} identities:")
        spans: dict[int, list[float]] = {}
        for face in memory.export_faces():
            if face["node"] is not None:
                spans.setdefault(face["node"], []).append(face["t"])
        for node in memory.export_nodes():
            ts = spans.get(node["id"], [])
            when = f"seen in the video from {min(ts):.1f} s to {max(ts):.1f} s" if ts else "not seen in this run"
            print(f"  face_{node['id']}: {node['n_observations']} faces, {when}")
        print(f"\ntimeline picture: {picture}\nmemory database:  {db}\nexport faces:     streamer export faces --db {db}")
    return 0
