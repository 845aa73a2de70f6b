"""`streamer show clip`: one clip as memory holds it, like M3-Agent's print_clip_full.

Its episodic and semantic memories with tags translated to names ("Alice (<face_3>)"), its faces
(with a contact sheet of their best crops, saved as a PNG) and its voices with what they said.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import numpy.typing as npt

from memory import Memory
from memory.graph import clock_time

from .errors import StreamerError

TAG = re.compile(r"<(face|voice|character)_(\d+)>")
THUMB, CAPTION = 112, 22  # contact sheet cell: a crop and its caption below


def named(memory: Memory, text: str) -> str:
    """Tags with a label become 'Label (<tag>)'; the others stay as they are."""

    def one(m: re.Match[str]) -> str:
        kind, number = m.group(1), int(m.group(2))
        if kind == "character":
            character = memory.character(number)
            label = character.label if character else None
        else:
            label = memory.node(number).label
        return f"{label} ({m.group(0)})" if label else m.group(0)

    return TAG.sub(one, text)


def who(memory: Memory, node_id: int) -> str:
    """'<face_3>', with its label and character where it has them."""
    node = memory.node(node_id)
    character = memory.character_of(node_id)
    label = node.label or (character.label if character else None)
    return node.tag + (f" {label}" if label else "") + (f", {character.tag}" if character else "")


def show_clip(memory: Memory, stream: str, index: int, sheet: str | Path) -> list[str]:
    """The lines to print for a clip; writes the faces' contact sheet to `sheet` when it has faces."""
    clip = memory.clip_memories(stream, index)
    if clip is None:
        raise StreamerError(f"no clip {index} of stream {stream!r} in the memory")
    lines = [f"clip {index} of camera '{stream}': {clock_time(clip['start_wall'])} to {clock_time(clip['end_wall'])} "
             f"(stream seconds {clip['first_t']:.1f} to {clip['last_t']:.1f})", "", "Episodic memories:"]  # fmt: skip
    lines += [f"  {named(memory, text)}" for _, text, _ in clip["episodic"]] or ["  (none)"]
    lines += ["", "Semantic memories:"]
    lines += [f"  {named(memory, text)}" for _, text in clip["semantic"]] or ["  (none)"]
    lines += ["", "Faces:"]
    lines += [f"  {who(memory, f)}" for f in clip["faces"]] or ["  (none)"]
    if clip["faces"]:
        contact_sheet(memory, clip["faces"], sheet)
        lines.append(f"  contact sheet: {sheet}")
    lines += ["", "Voices:"]
    lines += [f"  {who(memory, v)}" for v in clip["voices"]] or ["  (none)"]
    lines += _turn_lines(memory, clip)
    return lines


def _turn_lines(memory: Memory, clip: dict[str, Any]) -> list[str]:
    if not clip["turns"]:
        return []
    out = ["", "Speech:"]
    for t0, t1, voice, text in clip["turns"]:
        speaker = "(unknown voice)" if voice is None else who(memory, voice)
        said = f'"{text.strip()}"' if text else "(no transcript)"
        out.append(f"  {t0:7.1f}-{t1:7.1f} s  {speaker}: {said}")
    return out


def contact_sheet(memory: Memory, faces: list[int], path: str | Path) -> None:
    """One row per face node: its best crops, captioned with its tag (and label)."""
    crops = {f: list(dict.fromkeys(memory.crops(f))) for f in faces}  # (the same picture offered twice shows once)
    per_row = max([len(c) for c in crops.values()] + [3])  # room for the caption
    sheet: npt.NDArray[np.uint8] = np.full((len(faces) * (THUMB + CAPTION), per_row * THUMB, 3), 255, np.uint8)
    for row, face in enumerate(faces):
        y = row * (THUMB + CAPTION)
        for col, jpeg in enumerate(crops[face]):
            crop = cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_COLOR)
            if crop is not None:
                sheet[y : y + THUMB, col * THUMB : (col + 1) * THUMB] = cv2.resize(crop, (THUMB, THUMB))
        cv2.putText(sheet, who(memory, face), (4, y + THUMB + 16), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (0, 0, 0), 1, cv2.LINE_AA)
    if not cv2.imwrite(str(path), sheet):
        raise StreamerError(f"could not write {path}")
