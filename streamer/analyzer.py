"""Per-stream analysis of sampled frames: detect -> track -> embed (when due) -> identify -> record.

Blocking work runs elsewhere: detection in the inference executor, embeddings in the shared
microbatcher, and every memory call through the memory port (the memory thread, or the bus).
A frame is detected as soon as the previous one is detected, while earlier ones are finished
(embedded and stored): `results` runs `detect` ahead, then, in order, `track` once the previous
`finish` is done, then `finish`.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Callable, Iterator
from concurrent.futures import Executor
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from memory.records import FaceObservation, TrackEvidence

from .characters.mouths import FaceTrail
from .config import Config
from .faces.align import StillSignatures, align_faces, crop_jpeg
from .faces.detector import FaceDetector
from .faces.embedder import FaceEmbedder
from .faces.search import FaceSearch, SearchStats
from .faces.tracker import FaceTracker
from .memory_port import MemoryPort
from .records import FaceDetections, Frame

log = logging.getLogger(__name__)

RECENT_WEIGHT = 0.2  # moving average over about the last five frames (one second at 5 fps)
# Frames taken from a source and not yet tracked (being detected, or detected and waiting), at most;
# each holds its image. A camera takes only one more than the frame being detected: the frames it
# drops when the analysis falls behind must stay in its source, which keeps the newest.
DETECT_AHEAD_FILE, DETECT_AHEAD_LIVE = 8, 2


@dataclass
class StageTimes:
    """Seconds spent per stage, for the stats line and the benchmark."""

    detect: float = 0.0
    embed: float = 0.0
    match: float = 0.0


@dataclass
class AnalyzerStats:
    frames: int = 0
    faces: int = 0
    faces_with_node: int = 0
    embedded: int = 0
    times: StageTimes = field(default_factory=StageTimes)
    recent: StageTimes = field(default_factory=StageTimes)  # seconds per frame, moving average: health now
    latency: float = 0.0  # seconds from decode (frame.wall_time) to analysis done, summed over frames
    nodes: set[int] = field(default_factory=set)  # identities seen on this stream
    search: SearchStats = field(default_factory=SearchStats)


@dataclass
class FrameResult:
    frame: Frame
    faces: FaceDetections
    nodes: list[int | None]  # per face
    new_events: bool  # memory events were committed for this frame


@dataclass
class _SourceEnd:
    """The frames ended, by themselves (error None) or with the source's error."""

    error: Exception | None


@dataclass
class Detected:
    frame: Frame
    faces: FaceDetections
    cut: bool  # the frame follows a scene cut
    signatures: npt.NDArray[np.float32]  # (n, d) appearance of each face
    seconds: float  # detection time


def _detect(
    search: FaceSearch, signatures: StillSignatures, frame: Frame, tracked: npt.NDArray[np.float32]
) -> tuple[FaceDetections, bool, npt.NDArray[np.float32]]:
    faces, cut = search.find(frame.image, frame.t, tracked, frame.thumbnail)
    return faces, cut, signatures(frame.image, faces.kps)


class StreamAnalyzer:
    def __init__(
        self,
        stream: str,
        cfg: Config,
        gates: tuple[float, float],
        detector: FaceDetector,
        embedder: FaceEmbedder,
        memory: MemoryPort,
        infer_executor: Executor,
        track_ids: Iterator[int],
        trail: FaceTrail | None = None,
    ) -> None:
        self.stream = stream
        self.trail = trail  # where each analysed frame's faces are left for the speaker sync
        self._min_det, self._min_quality = gates
        self._embedder = embedder
        self._memory = memory
        self._executor = infer_executor
        self._search = FaceSearch(detector, cfg.models, cfg.tracker.scene_cut_threshold)
        self._signatures = StillSignatures()  # used by the detection, which takes a stream's frames one by one
        self.tracker = FaceTracker(cfg.tracker, lambda: next(track_ids))
        self._best_crop_quality: dict[int, float] = {}
        self._tracked = np.zeros((0, 4), np.float32)  # boxes of the faces of the frame detected last
        self.stats = AnalyzerStats(search=self._search.stats)

    async def results(self, frames: AsyncIterator[Frame], *, live: bool) -> AsyncIterator[FrameResult]:
        """The frames' results, in order. Detection runs ahead in a task of its own: a frame's crops
        need only the faces of the frame detected before it, so a file's next frames (up to
        DETECT_AHEAD_FILE) are detected while earlier ones are tracked, embedded and stored, in
        order. Detection never waits for an embedding, and a frame that needed one (a new face, a
        cut) does not hold up the detection of those after it. A result is handed on as soon as it
        is ready, not when the next frame comes (a camera's comes 200 ms later: that wait was all of
        a newcomer's `node.created` delay). A frame whose analysis fails ends a file (the error is
        raised) but not a camera that runs for days; the source's own error is raised once the
        frames before it are stored."""
        self._tracked = np.zeros((0, 4), np.float32)
        ahead: asyncio.Queue[tuple[Frame, Detected | Exception] | _SourceEnd] = asyncio.Queue()
        slots = asyncio.Semaphore(DETECT_AHEAD_LIVE if live else DETECT_AHEAD_FILE)
        detecting = asyncio.create_task(self._detect_ahead(frames, ahead, slots, live), name=f"detect-{self.stream}")
        getting: asyncio.Task[tuple[Frame, Detected | Exception] | _SourceEnd] | None = None
        item: tuple[Frame, Detected | Exception] | _SourceEnd | None = None  # detected, not yet tracked
        finishing: tuple[Frame, asyncio.Task[FrameResult]] | None = None
        try:
            while True:
                # The frame being finished goes on once done, or at once when the next one is there to
                # be tracked (the tracker takes frames in order, each once the one before is stored).
                if finishing is not None and (item is not None or finishing[1].done()):
                    last, finishing = finishing, None
                    if (result := await self._finished(*last, live)) is not None:
                        yield result
                    continue
                if item is None:
                    if getting is None and not ahead.empty():
                        item = ahead.get_nowait()
                        continue
                    getting = getting or asyncio.create_task(ahead.get())
                    await asyncio.wait([getting, *(finishing[1:] if finishing else ())], return_when=asyncio.FIRST_COMPLETED)
                    if getting.done():
                        item, getting = getting.result(), None
                    continue
                if isinstance(item, _SourceEnd):
                    if item.error is not None:
                        raise item.error
                    return
                (frame, detected), item = item, None
                slots.release()
                if isinstance(detected, Exception):
                    self._failed(frame, live, detected)
                    continue
                finishing = frame, asyncio.create_task(self.finish(detected, self.track(detected)))
        finally:
            pending = [t for t in (detecting, getting, finishing[1] if finishing else None) if t is not None and not t.done()]
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)

    async def _detect_ahead(
        self,
        frames: AsyncIterator[Frame],
        ahead: asyncio.Queue[tuple[Frame, Detected | Exception] | _SourceEnd],
        slots: asyncio.Semaphore,
        live: bool,
    ) -> None:
        """Detect each frame as soon as the one before is detected; a frame's failed detection is
        passed on with it, the source's end (or its error) last. A camera's frame is taken from its
        source only when the detection is free for it. A file's frames are taken while a slot is
        free, and the frames waiting when the detection gets free are detected in one go, one after
        the other in the inference thread: no trip through the event loop between them."""
        loop = asyncio.get_running_loop()
        source = aiter(frames)
        taken: asyncio.Queue[Frame | _SourceEnd] = asyncio.Queue()
        taking = None if live else asyncio.create_task(self._take_all(source, slots, taken))

        def post(item: tuple[Frame, Detected | Exception]) -> None:  # from the inference thread
            loop.call_soon_threadsafe(ahead.put_nowait, item)

        try:
            while True:
                item = await (self._take(source, slots) if taking is None else taken.get())
                batch = []
                while isinstance(item, Frame):
                    batch.append(item)
                    item = None if taken.empty() else taken.get_nowait()
                if batch:
                    try:
                        await loop.run_in_executor(self._executor, self._detect_each, batch, post)
                    except RuntimeError as e:  # the executor was shut down: end the stream, not leave results() waiting
                        ahead.put_nowait(_SourceEnd(e))
                        return
                if item is not None:
                    ahead.put_nowait(item)  # after the frames: their results were posted before the run returned
                    return
        finally:
            if taking is not None:
                taking.cancel()
                await asyncio.gather(taking, return_exceptions=True)

    @staticmethod
    async def _take(source: AsyncIterator[Frame], slots: asyncio.Semaphore) -> Frame | _SourceEnd:
        """The source's next frame once a slot is free, or its end."""
        await slots.acquire()
        try:
            return await anext(source)
        except StopAsyncIteration:
            return _SourceEnd(None)
        except Exception as e:
            return _SourceEnd(e)

    @staticmethod
    async def _take_all(source: AsyncIterator[Frame], slots: asyncio.Semaphore, taken: asyncio.Queue[Frame | _SourceEnd]) -> None:
        while not isinstance(item := await StreamAnalyzer._take(source, slots), _SourceEnd):
            taken.put_nowait(item)
        taken.put_nowait(item)

    def _detect_each(self, frames: list[Frame], post: Callable[[tuple[Frame, Detected | Exception]], None]) -> None:
        """In the inference executor: each frame's faces, searched around the faces of the frame
        detected last (the boxes its tracks will have once it is tracked, so it need not wait for
        that, nor for the embeddings that come before it), handed on as soon as they are found."""
        for frame in frames:
            t0 = time.perf_counter()
            try:
                faces, cut, signatures = _detect(self._search, self._signatures, frame, self._tracked)
            except Exception as e:
                post((frame, e))
                continue
            self._tracked = faces.xyxy
            post((frame, Detected(frame, faces, cut, signatures, time.perf_counter() - t0)))

    async def _finished(self, frame: Frame, finishing: asyncio.Task[FrameResult], live: bool) -> FrameResult | None:
        try:
            return await finishing
        except Exception as e:
            self._failed(frame, live, e)
            return None

    def _failed(self, frame: Frame, live: bool, error: Exception) -> None:
        """A file's error goes on up, a camera's is logged."""
        if not live:
            raise error
        log.error("%s: analysis of the frame at %.2f s failed; going on", self.stream, frame.t, exc_info=error)

    def track(self, detected: Detected) -> npt.NDArray[np.int64]:
        """Link the faces to tracks, once the previous frame is finished; the indices due for an embedding."""
        return self.tracker.update(detected.faces, detected.frame.t, scene_cut=detected.cut, signatures=detected.signatures)

    async def finish(self, detected: Detected, due: npt.NDArray[np.int64]) -> FrameResult:
        """Embed the due faces, then hand the frame's faces to the memory."""
        loop = asyncio.get_running_loop()
        frame, faces = detected.frame, detected.faces
        t1 = time.perf_counter()
        evidence: list[TrackEvidence] = []
        if len(due):
            aligned = await loop.run_in_executor(self._executor, align_faces, frame.image, faces.kps[due])
            emb = await self._embedder.embed(aligned)
            evidence = self._absorb(frame, faces, due, emb.vectors, emb.quality)
            self.stats.embedded += len(due)
        t2 = time.perf_counter()
        observations = self._observations(frame, faces)
        nodes, new_events = await self._memory.faces(observations, evidence, [int(t) for t in faces.track_id])
        t3 = time.perf_counter()
        for tid, node in zip(faces.track_id, nodes):
            self.tracker.tracks[int(tid)].node = node
        if self.trail is not None:  # after _absorb: a broken track has its new id by now
            self.trail.record(frame.t, faces.track_id, faces.kps)
        for ended in self.tracker.drain_ended():
            self._best_crop_quality.pop(ended.id, None)
        s = self.stats
        s.frames += 1
        s.faces += len(faces)
        s.faces_with_node += sum(n is not None for n in nodes)
        s.nodes.update(n for n in nodes if n is not None)
        s.times.detect += detected.seconds
        s.times.embed += t2 - t1
        s.times.match += t3 - t2
        r = s.recent
        r.detect += RECENT_WEIGHT * (detected.seconds - r.detect)
        r.embed += RECENT_WEIGHT * (t2 - t1 - r.embed)
        r.match += RECENT_WEIGHT * (t3 - t2 - r.match)
        s.latency += max(0.0, time.time() - frame.wall_time)
        return FrameResult(frame, faces, nodes, new_events)

    def _absorb(
        self,
        frame: Frame,
        faces: FaceDetections,
        due: npt.NDArray[np.int64],
        vectors: npt.NDArray[np.float32],
        quality: npt.NDArray[np.float32],
    ) -> list[TrackEvidence]:
        evidence = []
        for row, i in enumerate(due):
            box = faces.xyxy[i]
            size_score = float(faces.det_score[i] * (box[2] - box[0]) * (box[3] - box[1]))
            track = self.tracker.confirm_embedding(int(faces.track_id[i]), vectors[row], float(quality[row]), size_score, frame.t)
            faces.track_id[i] = track.id
            good = bool(faces.det_score[i] >= self._min_det and quality[row] >= self._min_quality)
            crop, crop_q = None, 0.0
            if good and quality[row] > self._best_crop_quality.get(track.id, 0.0):
                crop, crop_q = crop_jpeg(frame.image, box), float(quality[row])
                self._best_crop_quality[track.id] = crop_q
            evidence.append(
                TrackEvidence(
                    stream=self.stream,
                    track_id=track.id,
                    t=frame.t,
                    wall_time=frame.wall_time,
                    embeddings=vectors[row : row + 1],
                    qualities=quality[row : row + 1],
                    det_scores=faces.det_score[i : i + 1],
                    good=np.array([good]),
                    crop_jpeg=crop,
                    crop_quality=crop_q,
                )
            )
        return evidence

    def _observations(self, frame: Frame, faces: FaceDetections) -> list[FaceObservation]:
        types = faces.face_type
        out = []
        for i in range(len(faces)):
            x1, y1, x2, y2 = (int(v) for v in faces.xyxy[i])
            track = self.tracker.tracks[int(faces.track_id[i])]
            out.append(
                FaceObservation(
                    stream=self.stream,
                    track_id=track.id,
                    t=frame.t,
                    wall_time=frame.wall_time,
                    bbox=(x1, y1, x2, y2),
                    det_score=float(faces.det_score[i]),
                    quality=track.quality,
                    face_type=types[i],
                )
            )
        return out


def analysis_status(stats: AnalyzerStats) -> dict[str, Any]:
    """A stream's analysis health, added to its source's status (see stream_status.schema.json)."""
    return {
        "frames_analysed": stats.frames,
        "faces": stats.faces,
        "identities": len(stats.nodes),
        "detect_ms": round(stats.recent.detect * 1000, 1),
        "embed_ms": round(stats.recent.embed * 1000, 1),
    }


def face_payload(result: FrameResult) -> list[dict[str, Any]]:
    f = result.faces
    return [
        {
            "track": int(f.track_id[i]),
            "bbox": [int(v) for v in f.xyxy[i]],
            "node": result.nodes[i],
            "det_score": round(float(f.det_score[i]), 3),
        }
        for i in range(len(f))
    ]
