"""Soak: `streamer run` on live RTSP cameras for an hour or more, watching it for growth.

    python tools/soak.py [--cameras 2] [--minutes 60] [--size 640x360] [--out benchmarks/soak] [--bus]

Renders a clip of real people coming and going (with the bundled conversation as its soundtrack),
serves it to each camera from its own local RTSP server (the tests' gst-rtsp-server; the clip ends
and the camera reconnects, over and over), and runs `streamer run` as a user does (voices on, a real
mosquitto, Prometheus metrics on) as its own process. Several cameras compress the hours: stream
time is the sum over cameras. Every --every seconds it samples the streamer's RSS (and what of it
is the process' own, anonymous memory and what mapped files, the shared libraries), open files,
threads and CPU, the database's size (with its WAL), the event backlog (events stored but not yet
published) and the ASR backlog, then prints the slopes and writes OUT.csv and OUT.png.
With --bus the cameras go to `streamer worker` and the memory to `streamer memory-service`, two
processes on a real NATS server as a site runs them; each is sampled and reported on its own
(OUT-worker.* and OUT-service.*).
Speed is measured here, never asserted in tests.
"""

from __future__ import annotations

import argparse
import csv
import logging
import os
import random
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import astuple, dataclass, fields
from pathlib import Path

import cv2
import numpy as np
import psutil

from streamer.config import ModelConfig
from streamer.demo.cast import load_cast
from streamer.demo.compose import Appearance, render_video
from streamer.demo.speech import load_conversation
from streamer.faces.detector import FaceDetector
from streamer.faces.models import load_pack

sys.path.append(str(Path(__file__).resolve().parents[1] / "tests"))
from support.mosquitto import Mosquitto  # noqa: E402
from support.nats import NatsServer  # noqa: E402
from support.ports import free_port  # noqa: E402
from support.rtsp import RtspServer, serve_with_audio  # noqa: E402

CLIP_FPS = 25
FLAT_WINDOW_MINUTES = 45.0  # the goal: RSS grows < 5% over the last 45 minutes
RSS_GOAL_MB = 600.0
MB = 1024 * 1024


@dataclass
class Sample:
    wall_s: float  # since the streamer started
    stream_s: float  # decoded video, all cameras
    rss_mb: float
    anon_mb: float  # of the RSS: the process' own memory (heaps, model weights, buffers)
    file_mb: float  # of the RSS: mapped files (the shared libraries' code and data), shared with other processes
    open_files: int
    threads: int
    cpu_s: float
    db_mb: float
    events: int
    event_backlog: int
    asr_backlog: float
    analysed: float
    dropped: float


def render_clip(path: Path, seconds: float, size: tuple[int, int], seed: int) -> None:
    """People walk in and out at random: one to three in view, each staying 3-15 s, some gaps with nobody."""
    pack = load_pack(ModelConfig())
    cast = load_cast(FaceDetector(pack.detector, ModelConfig()))
    rng = random.Random(seed)
    script, t = [], 1.0
    while t < seconds - 4:
        for slot in rng.sample((0.2, 0.5, 0.8), rng.randint(1, 3)):
            start = t + rng.uniform(0, 2)
            script.append(Appearance(rng.randrange(len(cast)), start, min(seconds, start + rng.uniform(3, 15)), slot,
                                     scale=rng.uniform(0.8, 1.3), light=rng.uniform(0.8, 1.15)))
        t = max(a.end for a in script[-3:]) + rng.choice((0.0, 0.0, 3.0))
    talk = load_conversation()
    sound = np.tile(talk.samples, int(seconds // talk.duration) + 1)[: int(seconds * talk.rate)]
    render_video(path, cast, script, size=size, fps=CLIP_FPS, audio=sound, audio_rate=talk.rate)


def scrape(port: int) -> dict[str, float]:
    """Sums of each Prometheus series by name (over streams)."""
    out: dict[str, float] = {}
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as r:
        for line in r.read().decode().splitlines():
            if line and not line.startswith("#"):
                name, _, value = line.rpartition(" ")
                key = name.split("{")[0]
                out[key] = out.get(key, 0.0) + float(value)
    return out


def db_state(db: Path) -> tuple[float, int, int]:
    """File size (MB, with WAL), events stored, events stored but not published."""
    size = sum(p.stat().st_size for p in (db, db.with_name(db.name + "-wal")) if p.exists()) / MB
    try:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5) as con:
            last = con.execute("SELECT coalesce(max(seq), 0) FROM events").fetchone()[0]
            row = con.execute("SELECT value FROM meta WHERE key = 'published_seq'").fetchone()
        return size, last, last - int(row[0] if row else 0)
    except sqlite3.Error:  # not created yet, or busy
        return size, 0, 0


def sample(proc: psutil.Process, t0: float, db: Path, m: dict[str, float]) -> Sample:
    """The process' own figures, with the stream's, the database's and the backlogs' shared by all."""
    cpu = proc.cpu_times()
    size, events, backlog = db_state(db)
    mem = proc.memory_info()  # Linux: `shared` is the resident file-backed and shared pages (RssFile + RssShmem)
    return Sample(
        time.monotonic() - t0, m.get("streamer_stream_frames_decoded_total", 0.0) / CLIP_FPS,
        mem.rss / MB, (mem.rss - mem.shared) / MB, mem.shared / MB,
        proc.num_fds(), proc.num_threads(), cpu.user + cpu.system,
        size, events, backlog, m.get("streamer_asr_backlog_turns", 0.0),
        m.get("streamer_stream_frames_analysed_total", 0.0), m.get("streamer_stream_dropped_frames_total", 0.0),
    )


def slope_per_hour(xs: list[float], ys: list[float]) -> float:
    return float(np.polyfit(np.asarray(xs) / 3600, ys, 1)[0]) if len(xs) > 2 else 0.0


def by_quarter_hour(samples: list[Sample], end_s: float) -> str:
    """RSS median (10th percentile) over each 15 minutes of wall time, the last span running to the end."""
    spans, parts = max(1, int(end_s // 900)), []
    for k in range(spans):
        stop = (k + 1) * 900 if k < spans - 1 else end_s + 1
        rss = [s.rss_mb for s in samples if k * 900 <= s.wall_s < stop]
        if len(rss) >= 3:
            parts.append(f"min {k * 15}-{min(stop, end_s) / 60:.0f} {np.median(rss):.0f} ({np.percentile(rss, 10):.0f})")
    return ", ".join(parts)


def report(samples: list[Sample], cameras: int) -> list[str]:
    last = samples[-1]
    wall = [s.wall_s for s in samples]
    window = min(FLAT_WINDOW_MINUTES * 60, 0.75 * last.wall_s)
    tail = [s for s in samples if s.wall_s >= last.wall_s - window]
    tw = [s.wall_s for s in tail]
    rss_tail = slope_per_hour(tw, [s.rss_mb for s in tail])
    growth = 100 * rss_tail * (window / 3600) / max(tail[0].rss_mb, 1e-9)
    db_rate = slope_per_hour(tw, [s.db_mb for s in tail])
    stream_h = last.stream_s / 3600
    span = max(last.wall_s - samples[0].wall_s, 1e-9)

    def spread(values: list[float]) -> str:
        p10, p50, p90 = np.percentile(values, [10, 50, 90])
        return f"{p50:.0f} ({p10:.0f}-{p90:.0f})"

    return [
        f"{cameras} camera(s), {last.wall_s / 60:.1f} min wall, {stream_h:.2f} h of stream time, "
        f"{last.analysed:.0f} frames analysed, {last.dropped:.0f} dropped, CPU {100 * (last.cpu_s - samples[0].cpu_s) / span:.0f}% "
        f"(100 = one core), load average {' '.join(f'{v:.1f}' for v in os.getloadavg())}",
        f"RSS: start {samples[0].rss_mb:.0f} MB, peak {max(s.rss_mb for s in samples):.0f} MB, end {last.rss_mb:.0f} MB; "
        f"slope over the last {window / 60:.0f} min {rss_tail:+.1f} MB/h = {growth:+.1f}% over that window "
        f"(whole run {slope_per_hour(wall, [s.rss_mb for s in samples]):+.1f} MB/h)",
        f"over the last {window / 60:.0f} min, median (10th-90th percentile): RSS {spread([s.rss_mb for s in tail])} MB, "
        f"{100 * np.mean([s.rss_mb <= RSS_GOAL_MB for s in tail]):.0f}% of samples <= {RSS_GOAL_MB:.0f} MB; "
        f"of it anonymous {spread([s.anon_mb for s in tail])} MB, mapped files {spread([s.file_mb for s in tail])} MB",
        f"RSS by 15 minutes of wall time, median (10th percentile): {by_quarter_hour(samples, last.wall_s)} MB",
        f"open files: {min(s.open_files for s in samples)}-{max(s.open_files for s in samples)} (end {last.open_files}); "
        f"threads: {min(s.threads for s in samples)}-{max(s.threads for s in samples)} (end {last.threads})",
        f"database: {last.db_mb:.1f} MB at the end, {db_rate:+.1f} MB per wall hour over the last {window / 60:.0f} min "
        f"= {db_rate * last.wall_s / max(last.stream_s, 1e-9):+.1f} MB per camera-hour of stream",
        f"events: {last.events} stored; backlog (stored, not yet published) max {max(s.event_backlog for s in samples)}, "
        f"end {last.event_backlog}; ASR backlog max {max(s.asr_backlog for s in samples):.0f} turns",
    ]


def plot(samples: list[Sample], path: Path, title: str) -> None:
    """Four panels (RSS, database, open files and threads, backlogs) against wall minutes, drawn with cv2."""
    panels = [
        ("RSS (MB)", [("rss", [s.rss_mb for s in samples], (200, 60, 20)),
                      ("anon", [s.anon_mb for s in samples], (40, 150, 240)),
                      ("files", [s.file_mb for s in samples], (120, 120, 120))], RSS_GOAL_MB),
        ("database (MB)", [("db", [s.db_mb for s in samples], (30, 130, 30))], None),
        ("open files, threads", [("files", [float(s.open_files) for s in samples], (20, 20, 200)),
                                 ("threads", [float(s.threads) for s in samples], (160, 60, 160))], None),
        ("backlog: events, ASR turns", [("events", [float(s.event_backlog) for s in samples], (20, 120, 220)),
                                        ("ASR", [s.asr_backlog for s in samples], (120, 120, 0))], None),
    ]
    w, ph, left, top = 900, 170, 70, 40
    img = np.full((top + ph * len(panels) + 30, w, 3), 255, np.uint8)
    cv2.putText(img, title, (10, 25), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (0, 0, 0), 1, cv2.LINE_AA)
    minutes = np.array([s.wall_s / 60 for s in samples])
    xmax = max(float(minutes[-1]), 1.0)
    for k, (name, series, goal) in enumerate(panels):
        y0 = top + k * ph
        x0, x1, yb, yt = left, w - 20, y0 + ph - 25, y0 + 15
        ymax = max([max(v) for _, v, _ in series] + [goal or 0.0]) * 1.1 or 1.0
        cv2.rectangle(img, (x0, yt), (x1, yb), (180, 180, 180), 1)
        # names and legends above the box, where no line runs
        cv2.putText(img, name, (x0, yt - 5), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (0, 0, 0), 1, cv2.LINE_AA)
        cv2.putText(img, f"{ymax:.0f}", (5, yt + 10), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (0, 0, 0), 1, cv2.LINE_AA)
        cv2.putText(img, "0", (5, yb), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (0, 0, 0), 1, cv2.LINE_AA)

        def point(m: float, v: float) -> tuple[int, int]:
            return int(x0 + (x1 - x0) * m / xmax), int(yb - (yb - yt) * v / ymax)

        if goal is not None:
            cv2.line(img, point(0, goal), point(xmax, goal), (0, 0, 255), 1, cv2.LINE_AA)
            cv2.putText(img, f"goal {goal:.0f}", point(0.01 * xmax, goal * 0.92), cv2.FONT_HERSHEY_SIMPLEX, 0.4,
                        (0, 0, 255), 1, cv2.LINE_AA)
        for j, (label, values, colour) in enumerate(series):
            pts = np.array([point(m, v) for m, v in zip(minutes, values)], np.int32)
            cv2.polylines(img, [pts], False, colour, 2, cv2.LINE_AA)
            cv2.putText(img, label, (x1 - 80 * (len(series) - j), yt - 5), cv2.FONT_HERSHEY_SIMPLEX, 0.45, colour, 1,
                        cv2.LINE_AA)
    cv2.putText(img, f"wall minutes (0-{xmax:.0f})", (w // 2 - 60, img.shape[0] - 8), cv2.FONT_HERSHEY_SIMPLEX, 0.45,
                (0, 0, 0), 1, cv2.LINE_AA)
    cv2.imwrite(str(path), img)


@dataclass
class Watched:
    """One process of the streamer under soak, with its metrics port, log and samples."""

    name: str
    popen: subprocess.Popen[bytes]
    metrics_port: int
    log: Path
    samples: list[Sample]

    @classmethod
    def start(cls, name: str, args: list[str], tmp: Path) -> Watched:
        port, log = free_port(), tmp / f"{name}.log"
        with log.open("w") as out:
            popen = subprocess.Popen([sys.executable, "-m", "streamer", *args, "-q", "--metrics-port", str(port)],
                                     stdout=out, stderr=subprocess.STDOUT, cwd=tmp)
        return cls(name, popen, port, log, [])

    def stop(self) -> None:
        self.popen.send_signal(signal.SIGINT)
        try:
            self.popen.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.popen.kill()


def start_streamer(args: argparse.Namespace, tmp: Path, db: Path, mqtt: str, cameras: list[str]) -> list[Watched]:
    """`streamer run` alone, or with --bus a memory service and a worker on the NATS server at args.bus_url."""
    voices = ["--no-voices"] if args.no_voices else []
    if not args.bus:
        return [Watched.start("streamer", ["run", "--db", str(db), "--mqtt", mqtt, *voices, *cameras], tmp)]
    service = Watched.start("service", ["memory-service", "--bus", args.bus_url, "--db", str(db), "--mqtt", mqtt], tmp)
    return [service, Watched.start("worker", ["worker", "--bus", args.bus_url, *voices, *cameras], tmp)]


def write_results(samples: list[Sample], out: Path, title: str) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    with out.with_suffix(".csv").open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow([fl.name for fl in fields(Sample)])
        writer.writerows(astuple(s) for s in samples)
    plot(samples, out.with_suffix(".png"), title)
    print(f"wrote {out.with_suffix('.csv')} and {out.with_suffix('.png')}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cameras", type=int, default=2)
    ap.add_argument("--minutes", type=float, default=60.0, help="wall minutes to run")
    ap.add_argument("--size", default="640x360", help="camera frame size WxH")
    ap.add_argument("--clip-seconds", type=float, default=300.0, help="length of the served clip; it ends, cameras reconnect")
    ap.add_argument("--every", type=float, default=5.0, help="seconds between samples")
    ap.add_argument("--out", type=Path, default=Path("soak"), help="writes OUT.csv and OUT.png")
    ap.add_argument("--no-voices", action="store_true", help="faces only")
    ap.add_argument("--bus", action="store_true", help="a worker and a memory service on NATS instead of one run")
    args = ap.parse_args()
    logging.basicConfig(level=logging.WARNING)
    try:
        size = tuple(int(v) for v in args.size.lower().split("x"))
        assert len(size) == 2 and min(size) > 0
    except (ValueError, AssertionError):
        sys.exit(f"soak: --size must be WxH, not {args.size!r}")

    with tempfile.TemporaryDirectory() as tmp_dir:
        tmp = Path(tmp_dir)
        clip = tmp / "soak.mp4"
        t = time.monotonic()
        render_clip(clip, args.clip_seconds, size, seed=12)  # type: ignore[arg-type]
        print(f"clip: {args.clip_seconds:.0f} s at {args.size}, rendered in {time.monotonic() - t:.0f} s", flush=True)
        broker = Mosquitto(tmp / "mqtt")
        broker.start()
        nats = NatsServer(tmp)
        if args.bus:
            nats.start()
            args.bus_url = nats.url
        servers = [RtspServer(launch=serve_with_audio(clip)).start() for _ in range(args.cameras)]
        db = tmp / "memory.db"
        watched = start_streamer(args, tmp, db, broker.url, [f"cam{i + 1}={s.url}" for i, s in enumerate(servers)])
        t0 = time.monotonic()
        try:
            while time.monotonic() - t0 < args.minutes * 60:  # Ctrl-C ends it early, with the report
                time.sleep(args.every)
                for w in watched:
                    if w.popen.poll() is not None:
                        sys.exit(f"soak: {w.name} exited with {w.popen.returncode}: {w.log.read_text()[-2000:]}")
                try:
                    metrics: dict[str, float] = {}
                    for w in watched:
                        for key, value in scrape(w.metrics_port).items():
                            metrics[key] = metrics.get(key, 0.0) + value
                except OSError:  # metrics not served yet
                    continue
                for w in watched:
                    w.samples.append(sample(psutil.Process(w.popen.pid), t0, db, metrics))
                    s = w.samples[-1]
                    if len(w.samples) % max(1, int(60 / args.every)) == 0:
                        print(f"{w.name:8} {s.wall_s / 60:6.1f} min  stream {s.stream_s / 60:6.1f} min  "
                              f"RSS {s.rss_mb:5.0f} MB (anon {s.anon_mb:3.0f}, files {s.file_mb:3.0f})  "
                              f"files {s.open_files}  threads {s.threads}  db {s.db_mb:6.1f} MB  "
                              f"backlog {s.event_backlog}/{s.asr_backlog:.0f}", flush=True)
        except KeyboardInterrupt:
            print(f"soak: stopped after {(time.monotonic() - t0) / 60:.1f} min", flush=True)
        finally:
            for w in reversed(watched):  # the worker first: the service takes what it still sends
                w.stop()
            for server in servers:
                server.stop()
            nats.stop()
            broker.stop()
        for w in watched:
            if len(w.samples) < 3:
                sys.exit(f"soak: too few samples of {w.name}")
            lines = report(w.samples, args.cameras)
            print(*([f"{w.name}:"] if args.bus else []), *lines, sep="\n")
            out = args.out.with_name(f"{args.out.name}-{w.name}") if args.bus else args.out
            write_results(w.samples, out, f"soak, {w.name}: {lines[0].split(', CPU')[0]}")


if __name__ == "__main__":
    main()
