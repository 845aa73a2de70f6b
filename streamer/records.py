"""Records that flow through the pipeline: frames, audio chunks, and faces as parallel arrays."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt


@dataclass
class Frame:
    stream: str
    index: int  # decoded frame number within the current connection
    t: float  # seconds from the stream start, by PTS
    wall_time: float  # unix seconds when decoded
    image: npt.NDArray[np.uint8]  # (h, w, 3) BGR
    thumbnail: npt.NDArray[np.float32] | None = None  # streamer.scene's thumbnail, if the source made it


SAMPLE_RATE = 16_000  # every audio chunk is mono at this rate, whatever the source sent


@dataclass
class AudioChunk:
    stream: str
    t: float  # stream time of the first sample, seconds, on the same clock as Frame.t
    wall_time: float  # unix seconds when decoded
    samples: npt.NDArray[np.float32]  # (n,) mono at SAMPLE_RATE, in [-1, 1]

    @property
    def seconds(self) -> float:
        return len(self.samples) / SAMPLE_RATE

    @property
    def t_end(self) -> float:
        return self.t + self.seconds


@dataclass
class FaceDetections:
    """The faces of one frame as parallel arrays (row i of each array is face i)."""

    xyxy: npt.NDArray[np.float32]  # (n, 4)
    det_score: npt.NDArray[np.float32]  # (n,)
    kps: npt.NDArray[np.float32]  # (n, 5, 2) eyes, nose, mouth corners
    track_id: npt.NDArray[np.int64] = field(default=None)  # type: ignore[assignment]  # (n,), -1 until tracked

    def __post_init__(self) -> None:
        n = len(self.xyxy)
        if self.track_id is None:
            self.track_id = np.full(n, -1, dtype=np.int64)
        for name, arr, shape in (
            ("xyxy", self.xyxy, (n, 4)),
            ("det_score", self.det_score, (n,)),
            ("kps", self.kps, (n, 5, 2)),
            ("track_id", self.track_id, (n,)),
        ):
            if arr.shape != shape:
                raise ValueError(f"FaceDetections.{name}: expected shape {shape}, got {arr.shape}")

    @classmethod
    def empty(cls) -> FaceDetections:
        return cls(
            np.zeros((0, 4), np.float32), np.zeros(0, np.float32), np.zeros((0, 5, 2), np.float32), np.zeros(0, np.int64)
        )

    def __len__(self) -> int:
        return len(self.xyxy)

    def __getitem__(self, index: int | slice | npt.NDArray[np.bool_] | npt.NDArray[np.int64]) -> FaceDetections:
        if isinstance(index, int):
            index = np.array([index])
        return FaceDetections(self.xyxy[index], self.det_score[index], self.kps[index], self.track_id[index])

    @property
    def face_type(self) -> list[str]:
        """M3-Agent's rule: "ortho" if 1 < h/w < 1.5, else "side"."""
        w = self.xyxy[:, 2] - self.xyxy[:, 0]
        h = self.xyxy[:, 3] - self.xyxy[:, 1]
        r = h / np.maximum(w, 1e-6)
        return ["ortho" if 1 < x < 1.5 else "side" for x in r]
