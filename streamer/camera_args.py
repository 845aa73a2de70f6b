"""Cameras named on the command line: `NAME=URL` or a bare URL, file or folder, given a stable,
topic-safe stream name."""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from .errors import StreamerError


def stream_name_for(url: str) -> str:
    """A stable, topic-safe name from a source: file stem, or host and path of a URL."""
    parsed = urlparse(url)
    if parsed.scheme and parsed.netloc:
        raw = parsed.hostname or "camera"
        if parsed.path.strip("/"):
            raw += "_" + parsed.path.strip("/")
    else:
        raw = Path(url).stem or "video"
    return re.sub(r"[^a-zA-Z0-9_-]+", "_", raw).strip("_") or "video"


MEDIA_SUFFIXES = {
    ".mp4", ".mkv", ".mov", ".avi", ".webm", ".m4v", ".ts", ".flv", ".jpg", ".jpeg", ".png", ".bmp", ".webp",
    ".wav", ".flac", ".mp3", ".m4a", ".ogg", ".opus",
}  # fmt: skip


def expand_folders(sources: Sequence[str]) -> list[str]:
    """A folder stands for the videos and photos in it, in name order."""
    out: list[str] = []
    for src in sources:
        path = Path(src)
        if "://" not in src and "=" not in src and path.is_dir():
            found = sorted(str(p) for p in path.iterdir() if p.suffix.lower() in MEDIA_SUFFIXES and p.is_file())
            if not found:
                raise StreamerError(f"no videos or photos in folder: {src}")
            out += found
        else:
            out.append(src)
    return out


def cameras_from_args(sources: Sequence[str]) -> list[dict[str, Any]]:
    """`NAME=URL` keeps NAME; a bare URL gets a derived name, made unique with a suffix."""
    cams: list[dict[str, Any]] = []
    taken: set[str] = set()
    for src in expand_folders(sources):
        name, sep, url = src.partition("=")
        if not sep or "/" in name or ":" in name:
            name, url = stream_name_for(src), src
        base, k = name, 2
        while name in taken:
            name, k = f"{base}-{k}", k + 1
        taken.add(name)
        cams.append({"name": name, "url": url})
    return cams
