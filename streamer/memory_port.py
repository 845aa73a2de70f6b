"""What the analyzers need of the memory, and the steps that serve it on the memory's own thread.

`streamer run` serves the port with the local memory thread (`MemoryWorker`); `streamer worker`
serves it with the bus (`streamer.bus`), whose memory service applies the very same steps.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Protocol

from memory import Memory
from memory.records import FaceObservation, SpeakerEvidence, SpeechTurn, TrackEvidence


class MemoryPort(Protocol):
    """Per-frame and per-turn calls of the analyzers. The faces' call is made on the event loop; the
    voice calls come from voice and ASR threads and may block. Each returns the nodes known for the
    given tracks (None: none yet) and whether memory events were committed by it."""

    async def faces(
        self, observations: list[FaceObservation], evidence: list[TrackEvidence], track_ids: list[int]
    ) -> tuple[list[int | None], bool]: ...

    def turns(self, turns: list[SpeechTurn], final: bool) -> tuple[list[int | None], bool]: ...

    def speaker_evidence(self, ev: SpeakerEvidence) -> bool: ...

    def transcribed(self, texts: list[tuple[int, str | None]]) -> bool: ...


def faces_step(
    memory: Memory,
    observations: Sequence[FaceObservation],
    evidence: Sequence[TrackEvidence],
    track_ids: Sequence[int],
    commit: bool = True,
) -> tuple[list[int | None], bool]:
    """One trip to the memory thread per frame: record, identify, read back each face's node, and
    commit at once if an identity decision made events (the feed publishes only committed ones).
    `commit` False: the caller commits a whole batch of frames itself (the memory service)."""
    memory.record_faces(observations)
    for ev in evidence:
        memory.identify_track(ev)
    return [memory.node_of_track(t) for t in track_ids], commit and memory.flush_events()


def turns_step(
    memory: Memory, turns: Sequence[SpeechTurn], final: bool, commit: bool = True
) -> tuple[list[int | None], bool]:
    """One trip to the memory thread per speech segment; with no ASR the turns are final at once."""
    nodes = [memory.add_turn(turn) for turn in turns]
    if final:
        for turn in turns:
            memory.transcribed(turn.track_id, None)
    return nodes, commit and memory.flush_events()


def transcribed_step(memory: Memory, texts: Sequence[tuple[int, str | None]], commit: bool = True) -> bool:
    for track_id, text in texts:
        memory.transcribed(track_id, text)
    return commit and memory.flush_events()


def speaker_evidence_step(memory: Memory, ev: SpeakerEvidence, commit: bool = True) -> bool:
    """A tie or untie it causes goes out at once, like the turn's own events."""
    memory.speaker_evidence(ev)
    return commit and memory.flush_events()


class RemoteMemory(Protocol):
    """A memory in another process (`streamer worker`): the analyzers talk to `port`, and the app
    takes its track ids, stream ends and shutdown there instead of to a local memory thread."""

    port: MemoryPort

    async def track_ids(self) -> Iterator[int]: ...

    async def end_stream(self, stream: str, still: bool) -> None: ...

    async def close(self) -> None: ...
