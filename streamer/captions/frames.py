"""A few small JPEG frames of each clip, per stream, kept as the clip goes (for the language model).

A clip of `interval` seconds is cut into `per_clip` equal slots; the first analysed frame of an
empty slot is kept, so the frames spread over the clip whatever the frame rate. Encoding runs on
the keeper's own thread (the caller, on the event loop, only files the job), and a stream holds at
most `clips_held` clips: a clip that never closes in memory (nobody seen or heard) is forgotten.
"""

from __future__ import annotations

from collections import OrderedDict
from concurrent.futures import Future, ThreadPoolExecutor

import cv2
import numpy as np
import numpy.typing as npt

from ..records import Frame

JPEG_QUALITY = 80
CLIPS_HELD = 16  # per stream: files run ahead of the memory's clip events by a few clips at most


def small_jpeg(image: npt.NDArray[np.uint8], max_px: int) -> bytes:
    h, w = image.shape[:2]
    scale = max_px / max(h, w)
    if scale < 1:
        image = cv2.resize(image, (max(1, round(w * scale)), max(1, round(h * scale))), interpolation=cv2.INTER_AREA)
    ok, buf = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
    if not ok:
        raise ValueError(f"cannot encode a {w}x{h} frame as JPEG")
    return buf.tobytes()


class ClipFrames:
    def __init__(self, interval: float, per_clip: int, max_px: int, clips_held: int = CLIPS_HELD) -> None:
        self._interval = interval
        self._per_clip = per_clip
        self._max_px = max_px
        self._clips_held = clips_held
        self._held: dict[str, OrderedDict[int, dict[int, Future[bytes]]]] = {}
        self._encoder = ThreadPoolExecutor(max_workers=1, thread_name_prefix="clip-frames")

    def offer(self, frame: Frame) -> None:
        """Keeps the frame if its clip's slot is still empty; cheap when it is not."""
        if self._per_clip == 0:
            return
        index = int(frame.t // self._interval)
        slot = min(self._per_clip - 1, int((frame.t / self._interval - index) * self._per_clip))
        clips = self._held.setdefault(frame.stream, OrderedDict())
        slots = clips.get(index)
        if slots is None:
            slots = clips[index] = {}
            while len(clips) > self._clips_held:
                _, dropped = clips.popitem(last=False)
                for f in dropped.values():
                    f.cancel()
        if slot not in slots:
            slots[slot] = self._encoder.submit(small_jpeg, frame.image, self._max_px)

    def take(self, stream: str, index: int) -> list[Future[bytes]]:
        """The kept frames of a clip, in time order (encoded or being encoded); the keeper forgets them."""
        slots = self._held.get(stream, OrderedDict()).pop(index, {})
        return [slots[k] for k in sorted(slots)]

    def close(self) -> None:
        self._held.clear()
        self._encoder.shutdown(wait=False, cancel_futures=True)
