"""Pictures of a memory: who was seen and heard when (a timeline with each identity's best face).

Face rows come first, then one row per voice identity with its speech turns drawn as spans, all on
one time axis, so who spoke while whom was on screen can be read off at a glance.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
import numpy.typing as npt

from memory import Memory

ROW, THUMB, WIDTH = 64, 56, 900
COLOURS = [(76, 114, 176), (221, 132, 82), (85, 168, 104), (196, 78, 82), (129, 114, 179), (147, 120, 96), (218, 139, 195), (140, 140, 140)]
FACE_MARK_SECONDS = 0.2  # a face observation is one sampled frame: drawn as a 1/5 s tick at 5 fps


@dataclass
class _Row:
    stream: str
    node: int
    kind: str  # "face" or "voice"
    spans: list[tuple[float, float]] = field(default_factory=list)


def _rows(memory: Memory) -> tuple[list[_Row], float]:
    rows: dict[tuple[str, str, int], _Row] = {}
    end = 0.0
    for face in memory.export_faces():
        end = max(end, face["t"])
        if face["node"] is not None:
            row = rows.setdefault(("face", face["stream"], face["node"]), _Row(face["stream"], face["node"], "face"))
            row.spans.append((face["t"], face["t"] + FACE_MARK_SECONDS))
    for turn in memory.export_voices():
        end = max(end, turn["t_end"])
        if turn["node"] is not None:
            row = rows.setdefault(("voice", turn["stream"], turn["node"]), _Row(turn["stream"], turn["node"], "voice"))
            row.spans.append((turn["t_start"], turn["t_end"]))
    ordered = sorted(rows.values(), key=lambda r: (r.kind != "face", r.stream, min(s for s, _ in r.spans)))
    return ordered, end


def _speaker_icon(img: npt.NDArray[np.uint8], y: int, colour: tuple[int, int, int]) -> None:
    """A small waveform where a face row has its thumbnail: voices have no picture."""
    cv2.rectangle(img, (0, y), (THUMB - 1, y + THUMB - 1), (235, 235, 235), -1)
    for k, h in enumerate((6, 14, 22, 10, 18, 8, 4)):
        x = 6 + k * 7
        cv2.line(img, (x, y + THUMB // 2 - h), (x, y + THUMB // 2 + h), colour, 3)


def timeline_png(memory: Memory, path: str | Path) -> int:
    """Write a timeline per identity and stream (faces, then voices); return the number of identities drawn."""
    rows, longest = _rows(memory)
    height = ROW * max(1, len(rows)) + 30
    img = np.full((height, WIDTH, 3), 255, np.uint8)
    left = THUMB + 150
    scale = (WIDTH - left - 10) / max(longest, 1e-6)
    for r, row in enumerate(rows):
        y = r * ROW + 4
        colour = COLOURS[row.node % len(COLOURS)]
        if row.kind == "face":
            crops = memory.crops(row.node)
            thumb = cv2.imdecode(np.frombuffer(crops[0], np.uint8), cv2.IMREAD_COLOR) if crops else None
            if thumb is not None:
                img[y : y + THUMB, 0:THUMB] = cv2.resize(thumb, (THUMB, THUMB))
        else:
            _speaker_icon(img, y, colour)
        label = memory.node(row.node).label or f"{row.kind}_{row.node}"
        cv2.putText(img, label, (THUMB + 6, y + 24), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (0, 0, 0), 1, cv2.LINE_AA)
        cv2.putText(img, row.stream, (THUMB + 6, y + 44), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (90, 90, 90), 1, cv2.LINE_AA)
        top, bottom = (y + 8, y + THUMB - 8) if row.kind == "face" else (y + 18, y + THUMB - 18)
        for start, stop in row.spans:
            x1 = int(left + start * scale)
            cv2.rectangle(img, (x1, top), (max(x1 + 3, int(left + stop * scale)), bottom), colour, -1)
    if longest > 0:
        step = next(s for s in (1, 2, 5, 10, 30, 60, 300, 600, 1800, 3600, 1e9) if longest / s <= 12)
        for k in range(int(longest // step) + 1):
            x = int(left + k * step * scale)
            cv2.line(img, (x, height - 28), (x, height - 22), (0, 0, 0), 1)
            cv2.putText(img, f"{k * step:g}", (x - 4, height - 8), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (0, 0, 0), 1, cv2.LINE_AA)
    cv2.putText(img, "s", (WIDTH - 14, height - 8), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (0, 0, 0), 1, cv2.LINE_AA)
    cv2.imwrite(str(path), img)
    return len({row.node for row in rows})
