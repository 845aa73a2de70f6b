"""The gallery's HTML: the same pages for the static site and the live /gallery.

Links are relative (`index.html`, `character_2.html`, `crops/17.jpg`, `gallery.css`), so a folder
on disk and the server's /gallery/ look alike. Every text from memory is escaped. The timeline is
inline SVG: one row per stream and kind, a bar per track (a face on screen, a speech turn).
"""

from __future__ import annotations

from datetime import datetime
from html import escape
from importlib.resources import files
from string import Template

from .data import Card, Page, Span

SVG_WIDTH, ROW, LEFT = 900, 26, 170
COLOURS = {"face": "#4c72b0", "voice": "#dd8452"}
VOICE_ICON = (
    '<svg class="voice" viewBox="0 0 96 96" role="img" aria-label="voice only">'
    + "".join(f'<rect x="{14 + k * 10}" y="{48 - h}" width="5" height="{2 * h}" fill="#dd8452"/>'
              for k, h in enumerate((8, 20, 30, 14, 24, 10, 6)))  # fmt: skip
    + "</svg>"
)


def _template(name: str) -> Template:
    return Template(files(__package__).joinpath("templates", name).read_text(encoding="utf-8"))


def stylesheet() -> bytes:
    return files(__package__).joinpath("static", "gallery.css").read_bytes()


def when(seconds: float | None) -> str:
    return "never" if seconds is None else datetime.fromtimestamp(seconds).strftime("%Y-%m-%d %H:%M:%S")


def title(card: Card) -> str:
    return card.person.label or card.person.tag


def _thumbs(card: Card) -> str:
    if not card.crops:
        return VOICE_ICON
    return "".join(f'<img src="crops/{c}.jpg" alt="{escape(title(card))}">' for c in card.crops)


def _voices(card: Card) -> str:
    return "".join(f'<audio controls preload="metadata" src="voices/{n}.wav"></audio>' for n in card.snippets)


def _facts(card: Card) -> str:
    kinds = [f"{len(card.person.faces)} face{'s' * (len(card.person.faces) != 1)}",
             f"{len(card.person.voices)} voice{'s' * (len(card.person.voices) != 1)}"]  # fmt: skip
    return escape(f"{card.person.tag} · {', '.join(kinds)} · first seen {when(card.first_seen)} · last seen "
                  f"{when(card.last_seen)} · {card.faces} faces, {card.turns} speech turns · in {', '.join(card.streams) or '-'}")  # fmt: skip


def index_html(cards: list[Card]) -> str:
    items = []
    for card in cards:
        items.append(
            f'<a class="card" href="{card.slug}.html" data-tag="{escape(card.person.tag)}">'
            f'<div class="thumbs">{_thumbs(card)}</div><h2>{escape(title(card))}</h2>'
            f'<div class="tag">{escape(card.person.tag)}</div>'
            f'<div class="meta">last seen {when(card.last_seen)}<br>first seen {when(card.first_seen)}<br>'
            f'in {escape(", ".join(card.streams) or "-")}<br>{card.faces} faces, {card.turns} speech turns</div>{_voices(card)}</a>'
        )
    summary = f"{len(cards)} {'person' if len(cards) == 1 else 'people'}"
    return _template("index.html").substitute(summary=summary, cards="\n".join(items) or "<p>Nobody yet.</p>")


def timeline_svg(spans: tuple[Span, ...]) -> str:
    if not spans:
        return "<p>No sightings stored.</p>"
    rows = sorted({(s.stream, s.kind) for s in spans}, key=lambda r: (r[1] != "face", r[0]))
    start, end = min(s.start for s in spans), max(s.end for s in spans)
    scale = (SVG_WIDTH - LEFT - 10) / max(end - start, 1.0)
    height = ROW * len(rows) + 30
    out = [f'<svg class="timeline" width="{SVG_WIDTH}" height="{height}" viewBox="0 0 {SVG_WIDTH} {height}">']
    for r, (stream, kind) in enumerate(rows):
        y = r * ROW + 6
        out.append(f'<text x="6" y="{y + 15}" font-size="12">{escape(stream)} ({kind})</text>')
        for s in (s for s in spans if (s.stream, s.kind) == (stream, kind)):
            x = LEFT + (s.start - start) * scale
            out.append(f'<rect x="{x:.1f}" y="{y}" width="{max(2.0, (s.end - s.start) * scale):.1f}" height="{ROW - 8}" '
                       f'fill="{COLOURS[kind]}"><title>{when(s.start)} to {when(s.end)}</title></rect>')  # fmt: skip
    for x, t in ((LEFT, start), (SVG_WIDTH - 10, end)):
        anchor = "start" if x == LEFT else "end"
        out.append(f'<text x="{x}" y="{height - 8}" font-size="11" text-anchor="{anchor}">{when(t)}</text>')
    out.append("</svg>")
    return "".join(out)


def person_html(page: Page) -> str:
    card = page.card
    crops = ("".join(f'<img src="crops/{c}.jpg" alt="{escape(title(card))}">' for c in page.crops) or VOICE_ICON) + _voices(card)
    clips = []
    for clip in page.clips:
        lines = "".join(f"<p>{escape(m.text)}</p>" for m in clip.episodic)
        clips.append(f'<div class="clip"><div class="meta">camera {escape(clip.stream)}, clip {clip.index}: {when(clip.start)} '
                     f"to {when(clip.end)}</div>{lines}</div>")  # fmt: skip
    said = "".join(f'<p><span class="meta">{when(u.start)} in {escape(u.stream)}</span> “{escape(u.text or "")}”</p>' for u in page.said)
    return _template("person.html").substitute(
        name=escape(title(card)), facts=_facts(card), crops=crops, timeline=timeline_svg(page.spans),
        clips="".join(clips) or "<p>No clips.</p>", said=f'<div class="said">{said}</div>' if said else "<p>Nothing transcribed.</p>",
    )  # fmt: skip
