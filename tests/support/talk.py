"""People talking in front of a camera, as the memory sees it: face tracks on screen during speech
turns, and the synchrony of each visible face with each turn."""

from __future__ import annotations

from dataclasses import dataclass, field

from support.scenario import Scene

from memory import SpeakerEvidence

STEP = 0.5  # seconds between analysed frames


@dataclass
class Talk:
    scene: Scene
    tracks: dict[int, int] = field(default_factory=dict)  # person -> their face track on screen
    faces: dict[int, int | None] = field(default_factory=dict)  # person -> face node
    voices: dict[int, int | None] = field(default_factory=dict)  # speaker -> voice node

    def turn(
        self,
        on_screen: list[int],
        speaker: int | None,
        sync: dict[int, float] | None = None,
        seconds: float = 3.0,
        text: str | None = None,
        stream: str = "door",
    ) -> int | None:
        """The people in `on_screen` are seen for the whole turn while `speaker` speaks (None: silence);
        `sync` is each visible person's synchrony with the turn (None: not measured). Returns the turn id."""
        scene, memory = self.scene, self.scene.memory
        t0 = scene.stream_t.get(stream, 0.0)
        for person in on_screen:
            track = self.tracks.setdefault(person, memory.new_track_id())
            scene.stream_t[stream] = t0
            _, self.faces[person] = scene.show(person, int(seconds / STEP) + 1, stream=stream, track_id=track, step=STEP)
        scene.stream_t[stream] = t0
        if speaker is None:
            scene.advance(seconds, stream)
            return None
        turn, self.voices[speaker] = scene.speak(speaker, seconds, stream=stream)
        if sync is not None:
            memory.speaker_evidence(SpeakerEvidence(turn, {self.tracks[p]: s for p, s in sync.items()}))
        if text is not None:
            memory.transcribed(turn, text)
        return turn

    def leave(self, person: int) -> None:
        """The person walks off: a later appearance is a new track."""
        self.tracks.pop(person, None)

    def settle(self) -> None:
        """Turns still waiting for synchrony are weighed with what came."""
        self.scene.clock.now += self.scene.memory.cfg.character_settle_seconds + 1
        self.scene.memory.tick()
