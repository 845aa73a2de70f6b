"""What the language model is shown of a clip, and how its answer is read.

The model gets the clip's frames, a crop of each person's face with their tag, and the speech turns
with voice tags and transcripts, and is asked for M3-Agent's two kinds of memories as JSON:
`{"episodic": [...], "semantic": [...]}`, each a line like "<face_3> is ...". Small models wander
from that form, so the answer is read leniently: JSON anywhere in the text (fenced or not), else
plain lines (bullets and numbers stripped, "Episodic:" / "Semantic:" headings switch the kind).
"""

from __future__ import annotations

import base64
import json
import re
from dataclasses import dataclass, field
from typing import Any

from memory.graph import clock_time

MAX_LINES = 20  # per kind and clip: a rambling model cannot flood the graph
MAX_CHARS = 500  # per memory

SYSTEM = (
    "You write memories of what a camera saw and heard in one short clip. People are named by tags: <face_N> is a "
    "face seen, <voice_N> a voice heard, <character_N> a person both seen and heard. Use only the tags given. "
    "Episodic memories say what happened in this clip, for example: \"<face_3> sits at a desk\", "
    "\"<voice_1> greets <face_3>\". Semantic memories are lasting facts about a person, for example: "
    "\"<face_3> is the host\", \"<voice_1> speaks English\". Answer with JSON only: "
    '{"episodic": ["..."], "semantic": ["..."]}'
)
BULLET = re.compile(r"^\s*(?:[-*\u2022]+|\d+[.)])\s*")
HEADING = re.compile(r"^\s*[#*\s]*(episodic|semantic)\b[^:]*:\s*(.*)$", re.IGNORECASE)


@dataclass
class Turn:
    t_start: float  # seconds from the clip's start
    t_end: float
    tag: str | None  # the voice's tag; None: no identity
    text: str | None  # None: not transcribed (yet)


@dataclass
class ClipContext:
    """A closed clip as the model is told about it."""

    stream: str
    index: int
    start_wall: float
    end_wall: float
    faces: list[tuple[str, bytes | None]] = field(default_factory=list)  # (tag, JPEG crop)
    voices: list[str] = field(default_factory=list)  # tags
    turns: list[Turn] = field(default_factory=list)

    @property
    def tags(self) -> list[str]:
        return list(dict.fromkeys([t for t, _ in self.faces] + self.voices))


@dataclass
class Memories:
    episodic: list[str] = field(default_factory=list)
    semantic: list[str] = field(default_factory=list)


def _image(jpeg: bytes) -> dict[str, Any]:
    return {"type": "image_url", "image_url": {"url": "data:image/jpeg;base64," + base64.b64encode(jpeg).decode()}}


def _describe(ctx: ClipContext) -> str:
    lines = [f"Camera '{ctx.stream}', clip {ctx.index}, from {clock_time(ctx.start_wall)} to {clock_time(ctx.end_wall)}."]
    lines.append("People seen: " + (", ".join(t for t, _ in ctx.faces) or "none") + ".")
    lines.append("Voices heard: " + (", ".join(ctx.voices) or "none") + ".")
    if ctx.turns:
        lines.append("What was said:")
        for turn in ctx.turns:
            said = f'"{turn.text.strip()}"' if turn.text and turn.text.strip() else "(not transcribed)"
            lines.append(f"[{turn.t_start:.1f}-{turn.t_end:.1f} s] {turn.tag or 'an unknown voice'}: {said}")
    return "\n".join(lines)


def build_messages(ctx: ClipContext, frames: list[bytes], images: bool) -> list[dict[str, Any]]:
    """Chat messages for one clip; without `images` the frames and crops are left out (a text-only model)."""
    text = _describe(ctx)
    if not images:
        return [{"role": "system", "content": SYSTEM}, {"role": "user", "content": text}]
    parts: list[dict[str, Any]] = [{"type": "text", "text": text}]
    if frames:
        parts.append({"type": "text", "text": f"{len(frames)} frames of the clip, in time order:"})
        parts += [_image(f) for f in frames]
    for tag, crop in ctx.faces:
        if crop:
            parts += [{"type": "text", "text": f"The face of {tag}:"}, _image(crop)]
    return [{"role": "system", "content": SYSTEM}, {"role": "user", "content": parts}]


def _json_object(reply: str) -> dict[str, Any] | None:
    """The first JSON object in the text that parses, or None."""
    decoder = json.JSONDecoder()
    for start in [m.start() for m in re.finditer(r"\{", reply)]:
        try:
            value, _ = decoder.raw_decode(reply[start:])
        except json.JSONDecodeError:
            continue
        if isinstance(value, dict):
            return value
    return None


def _clean(line: Any) -> str | None:
    if not isinstance(line, str):
        return None
    line = BULLET.sub("", line).strip().strip('"').strip()
    return line[:MAX_CHARS] if any(c.isalpha() for c in line) else None


def _lines(value: Any) -> list[str]:
    items = value if isinstance(value, list) else [value]
    return [c for c in (_clean(v) for v in items) if c][:MAX_LINES]


def parse_reply(reply: str) -> Memories:
    """The memories in a model's answer: JSON `{"episodic": [...], "semantic": [...]}` or plain lines."""
    found = _json_object(reply)
    if found is not None:
        keys = {k.lower(): v for k, v in found.items() if isinstance(k, str)}
        if "episodic" in keys or "semantic" in keys:
            return Memories(_lines(keys.get("episodic", [])), _lines(keys.get("semantic", [])))
    out = Memories()
    target = out.episodic
    for raw in reply.replace("```json", "").replace("```", "").splitlines():
        heading = HEADING.match(raw)
        if heading:
            target = out.episodic if heading.group(1).lower() == "episodic" else out.semantic
            raw = heading.group(2)
        line = _clean(raw)
        if line and len(target) < MAX_LINES:
            target.append(line)
    return out
