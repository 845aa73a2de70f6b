"""Pictures of a memory: who was seen when (a timeline with each identity's best face)."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

import cv2
import numpy as np

from memory import Memory

ROW, THUMB, WIDTH = 64, 56, 900
COLOURS = [(76, 114, 176), (221, 132, 82), (85, 168, 104), (196, 78, 82), (129, 114, 179), (147, 120, 96), (218, 139, 195), (140, 140, 140)]


def timeline_png(memory: Memory, path: str | Path) -> int:
    """Write a timeline per stream and identity; return the number of identities drawn."""
    seen: dict[tuple[str, int], list[float]] = defaultdict(list)
    end: dict[str, float] = defaultdict(float)
    for face in memory.export_faces():
        end[face["stream"]] = max(end[face["stream"]], face["t"])
        if face["node"] is not None:
            seen[(face["stream"], face["node"])].append(face["t"])
    rows = sorted(seen, key=lambda k: (k[0], min(seen[k])))
    height = ROW * max(1, len(rows)) + 30
    img = np.full((height, WIDTH, 3), 255, np.uint8)
    left = THUMB + 150
    for r, (stream, node) in enumerate(rows):
        y = r * ROW + 4
        crops = memory.crops(node)
        if crops:
            thumb = cv2.imdecode(np.frombuffer(crops[0], np.uint8), cv2.IMREAD_COLOR)
            if thumb is not None:
                img[y : y + THUMB, 0:THUMB] = cv2.resize(thumb, (THUMB, THUMB))
        label = memory.node(node).label or f"face_{node}"
        cv2.putText(img, label, (THUMB + 6, y + 24), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (0, 0, 0), 1, cv2.LINE_AA)
        cv2.putText(img, stream, (THUMB + 6, y + 44), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (90, 90, 90), 1, cv2.LINE_AA)
        scale = (WIDTH - left - 10) / max(end[stream], 1e-6)
        colour = COLOURS[node % len(COLOURS)]
        for t in seen[(stream, node)]:
            x = int(left + t * scale)
            cv2.rectangle(img, (x, y + 8), (x + 3, y + THUMB - 8), colour, -1)
    longest = max(end.values(), default=0.0)
    if longest > 0:
        scale = (WIDTH - left - 10) / longest
        step = next(s for s in (1, 2, 5, 10, 30, 60, 300, 600, 1800, 3600, 1e9) if longest / s <= 12)
        for k in range(int(longest // step) + 1):
            x = int(left + k * step * scale)
            cv2.line(img, (x, height - 28), (x, height - 22), (0, 0, 0), 1)
            cv2.putText(img, f"{k * step:g}", (x - 4, height - 8), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (0, 0, 0), 1, cv2.LINE_AA)
    cv2.putText(img, "s", (WIDTH - 14, height - 8), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (0, 0, 0), 1, cv2.LINE_AA)
    cv2.imwrite(str(path), img)
    return len({node for _, node in rows})
