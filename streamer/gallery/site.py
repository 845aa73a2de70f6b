"""`streamer gallery`: the gallery as a folder of static files (open index.html in a browser)."""

from __future__ import annotations

import logging
import re
from pathlib import Path

from memory.query import MemoryQuery

from ..errors import StreamerError
from .data import GalleryData
from .render import index_html, person_html, stylesheet

log = logging.getLogger(__name__)

SLUG = re.compile(r"^(face|voice|character)_\d+$")


def write_site(db: str | Path, out: str | Path) -> int:
    """Writes index.html, a page per person, their crops and the stylesheet into `out`; returns the number of people."""
    folder = Path(out)
    try:
        (folder / "crops").mkdir(parents=True, exist_ok=True)
        (folder / "voices").mkdir(exist_ok=True)
    except OSError as e:
        raise StreamerError(f"cannot write the gallery to {folder}: {e.strerror or e}") from None
    written: set[Path] = set()
    with MemoryQuery(db) as query:
        data = GalleryData(query)
        cards = data.cards()
        (folder / "index.html").write_text(index_html(cards), encoding="utf-8")
        (folder / "gallery.css").write_bytes(stylesheet())
        for card in cards:
            page = data.page(card.slug)
            (path := folder / f"{card.slug}.html").write_text(person_html(page), encoding="utf-8")
            written.add(path)
            for crop_id in page.crops:
                jpeg = data.crop(crop_id)
                if jpeg is not None:
                    (path := folder / "crops" / f"{crop_id}.jpg").write_bytes(jpeg)
                    written.add(path)
            for node_id in card.snippets:
                wav = data.snippet(node_id)
                if wav is not None:
                    (path := folder / "voices" / f"{node_id}.wav").write_bytes(wav)
                    written.add(path)
    # pages, crops and voices of people no longer in memory (forgotten, merged) must not outlive them
    for stale in [*folder.glob("crops/*.jpg"), *folder.glob("voices/*.wav"), *(p for p in folder.glob("*.html") if SLUG.match(p.stem))]:
        if stale not in written:
            stale.unlink()
    log.info("gallery of %d people in %s", len(cards), folder)
    return len(cards)
