"""What the query layer answers with: small records that carry ids, streams and times, so a caller
can follow up (a person's nodes and character, a clip's stream and index). `as_dict` gives the JSON
form the API, MCP tools and `streamer ask --json` share. Nothing here holds an embedding."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any


class Answer:
    def as_dict(self) -> dict[str, Any]:
        return asdict(self)  # type: ignore[call-overload,no-any-return]


@dataclass(frozen=True)
class Person(Answer):
    """One person as memory knows them: a character (a face tied to a voice) or a lone face or voice node."""

    tag: str  # "<character_2>", "<face_3>" or "<voice_7>"
    label: str | None
    character: int | None
    faces: tuple[int, ...]
    voices: tuple[int, ...]

    @property
    def nodes(self) -> tuple[int, ...]:
        return self.faces + self.voices

    @property
    def name(self) -> str:
        """'Anna (<face_3>)', or the bare tag when unlabelled."""
        return f"{self.label} ({self.tag})" if self.label else self.tag


@dataclass(frozen=True)
class Visit(Answer):
    """A person's stretch in one stream: their tracks there, joined across short gaps."""

    stream: str
    start: float  # unix seconds
    end: float
    seconds: float  # how long it lasted, in stream time
    nodes: tuple[int, ...]  # the person's nodes seen or heard in it
    t_start: float  # stream seconds
    t_end: float


@dataclass(frozen=True)
class Present(Answer):
    """Someone in a stream now, as the live run announced (person.appeared, no person.left since)."""

    stream: str
    person: Person
    since: float  # unix seconds of the announcement
    node: int  # the face or voice node that was announced


@dataclass(frozen=True)
class Sighting(Answer):
    """Someone seen or heard in a time range: per person and stream."""

    person: Person
    stream: str
    first: float
    last: float
    seen: bool  # a face of theirs was on screen
    heard: bool  # a voice of theirs was heard


@dataclass(frozen=True)
class LastSeen(Answer):
    person: Person
    seen: Visit | None  # the last visit in which their face was on screen
    heard: Visit | None  # the last visit in which their voice was heard
    first_seen: float | None
    streams: tuple[str, ...]


@dataclass(frozen=True)
class Utterance(Answer):
    """One speech turn with its transcript."""

    stream: str
    turn: int  # the turn's track id
    voice: int | None
    character: int | None
    speaker: str  # the speaker's name ("Anna (<voice_7>)"), or "(unknown voice)"
    start: float  # unix seconds
    end: float
    t_start: float  # stream seconds
    t_end: float
    text: str | None


@dataclass(frozen=True)
class Companion(Answer):
    """Someone a person shared clips with: `together` counts the clips in which both were on screen at once."""

    person: Person
    clips: int
    together: int
    streams: tuple[str, ...]
    last: float  # unix seconds of the end of the latest shared clip


@dataclass(frozen=True)
class TextMemory(Answer):
    """An episodic or semantic memory: `text` with tags translated to names, `tagged` as stored."""

    id: int  # the text node
    kind: str  # "episodic" or "semantic"
    text: str
    tagged: str
    nodes: tuple[int, ...]  # the face and voice nodes it names (after merges)


@dataclass(frozen=True)
class Clip(Answer):
    """A clip as memory holds it (M3-Agent's print_clip_full, as data)."""

    stream: str
    index: int
    start: float
    end: float
    t_start: float
    t_end: float
    episodic: tuple[TextMemory, ...]
    semantic: tuple[TextMemory, ...]
    people: tuple[Person, ...]
    speech: tuple[Utterance, ...]


@dataclass(frozen=True)
class Hit(Answer):
    """A search result: a memory or a transcript, why it matched and how well."""

    source: str  # "episodic", "semantic" or "speech"
    id: int  # the text node, or the speech turn's track id
    text: str  # tags translated to names
    tagged: str
    stream: str | None
    time: float | None  # unix seconds (a semantic memory: when it was written)
    clip: int | None  # the clip's index in its stream, where it has one
    nodes: tuple[int, ...]  # the people it is about
    match: str  # "words", "meaning" or "both"
    score: float  # fused rank score, higher is better
    similarity: float | None  # cosine of the sentence vectors, where compared
    people: tuple[Person, ...] = field(default=())
