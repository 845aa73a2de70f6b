"""Settings of the memory library. Composed into the streamer's one config model.

Names follow M3-Agent where it has one (`img_matching_threshold`, `max_img_embeddings`,
`audio_matching_threshold`, `max_audio_embeddings`, `interval_seconds`). Voice settings that
M3-Agent lacks carry a `voice_` prefix beside their face counterparts.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, model_validator

# M3-Agent's value, set for ERes2NetV2; the voice path calibrates it for its own speaker model.
AUDIO_MATCHING_THRESHOLD = 0.4  # CAM++ turns of real conversation (see README, Voices)


class StrictModel(BaseModel):
    """Unknown keys are errors, so a typo in a YAML file stops startup."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class ReclusterConfig(StrictModel):
    every_seconds: float = Field(30.0, gt=0, description="Run HDBSCAN on the buffer at least this often (wall seconds).")
    every_faces: int = Field(300, ge=1, description="...or after this many new buffered faces, whichever comes first.")
    max_share: float = Field(
        0.1, gt=0, le=1, description="...but never more than this share of the memory's time: a run that took c seconds is "
        "followed by none for c / max_share seconds (its cost grows with the buffer, not with the load).",
    )
    buffer_size: int = Field(10_000, ge=10, description="Most recent good faces kept for re-clustering.")
    min_cluster_size: int = Field(2, ge=2, description="HDBSCAN min_cluster_size (M3-Agent's default is 2).")
    merge_min_similarity: float = Field(
        0.45, gt=0, le=1, description="Two nodes in one cluster merge only if their mean vectors are this similar."
    )
    split_max_similarity: float = Field(
        0.15, ge=-1, le=1, description="A node splits only if its clusters' mean vectors are at most this similar."
    )


class VoiceReclusterConfig(ReclusterConfig):
    """The same pass over good speech turns, with guards of its own. Clusters of voices are compared
    by M3-Agent's mean pairwise cosine (the matching score), not by the direction of their means:
    speaker embeddings share a large common part that averaging keeps. Two voice nodes merge only
    if their turns agree across the nodes about as well as within them (memory.policy.VoicePolicy):
    with the bundled CAM++ on turns of real conversation the same speaker scores 0.62 on average,
    but two people of one conversation 0.39 (0.06 on meetings, where voices differ more), too close
    for a fixed floor alone (tools/bench_voices.py --recluster)."""

    every_faces: int = Field(20, ge=1, description="...or after this many new buffered good speech turns.")
    buffer_size: int = Field(2000, ge=10, description="Most recent good speech turns kept for re-clustering.")
    merge_min_similarity: float = Field(
        0.4, gt=0, le=1, description="Voice clusters join if their mean pairwise cosine is at least this, and two voice "
        "nodes merge only if the median cosine between their turns is at least this...",
    )
    merge_max_gap: float = Field(
        0.1, ge=0, le=2, description="...and falls at most this far below the median cosine between each node's own turns...",
    )
    merge_min_turns: int = Field(
        3, ge=2, description="...measured on the nodes holding at least this many good turns (one of the two must).",
    )
    split_max_similarity: float = Field(
        0.2, ge=-1, le=1, description="A voice node splits only if its clusters' mean pairwise cosine is at most this."
    )


class MemoryConfig(StrictModel):
    db: str = Field(
        "memory.db", description="Where the whole memory graph lives: an SQLite file (a path or sqlite:///PATH) or a PostgreSQL "
        "database (postgresql://USER@HOST:PORT/NAME; needs the postgres extra)."
    )
    img_matching_threshold: float = Field(
        0.3, gt=0, le=1, description="Accept a face node when the mean pairwise cosine is at least this (M3-Agent: 0.3)."
    )
    max_img_embeddings: int = Field(10, ge=1, description="Face embeddings kept per node (M3-Agent: 10).")
    audio_matching_threshold: float = Field(
        AUDIO_MATCHING_THRESHOLD, gt=0, le=1, description="Same for voice nodes (M3-Agent: 0.6 for ERes2NetV2; 0.4 calibrated for CAM++ turns)."
    )
    max_audio_embeddings: int = Field(20, ge=1, description="Voice embeddings (one per good turn) kept per node (M3-Agent: 20).")
    confirm_min_faces: int = Field(
        3, ge=1, description="Face observations (at least one of them good) a provisional node needs to be confirmed."
    )
    confirm_min_seconds: float = Field(0.5, ge=0, description="...seen over at least this span of stream time.")
    provisional_ttl_seconds: float = Field(20.0, gt=0, description="A provisional node not confirmed in this time expires.")
    voice_confirm_speech_seconds: float = Field(
        3.0, ge=0, description="Good speech (seconds) a provisional voice node needs to be confirmed..."
    )
    voice_confirm_min_turns: int = Field(2, ge=1, description="...spread over at least this many good turns...")
    voice_confirm_long_turn_seconds: float = Field(
        6.0, gt=0, description="...or one good turn at least this long confirms it alone."
    )
    voice_provisional_ttl_seconds: float = Field(
        300.0, gt=0, description="A provisional voice node not confirmed in this time expires (people speak in bursts)."
    )
    interval_seconds: float = Field(30.0, gt=0, description="Clip length per stream; each closed clip gets an episodic memory.")
    absent_after_seconds: float = Field(5.0, gt=0, description="A person not seen in a stream for this long has left it.")
    voice_absent_after_seconds: float = Field(
        30.0, gt=0, description="A voice not heard in a stream for this long has left it (pauses between turns are long)."
    )
    crops_per_node: int = Field(5, ge=0, description="Best face crops (JPEG) kept per node.")
    voice_snippet_seconds: float = Field(
        0.0, ge=0, le=30, description="Seconds of each voice's longest good turn kept as audio (WAV) for the gallery; "
        "0: none (a voice recording is personal data).",
    )
    retention_days: float = Field(
        30.0, gt=0, description="Observations, speech turns, clips and their memories, who-spoke verdicts (counted first) and "
        "published events older than this are pruned, and facts about people not seen since, and strangers (expired "
        "nodes, never confirmed) not seen since; the nodes of people, their crops and ties stay.",
    )
    flush_every_seconds: float = Field(1.0, gt=0, description="Buffered writes are committed at least this often.")
    character_min_visible: float = Field(
        0.5, gt=0, le=1, description="A face track is on screen during a speech turn when it spans at least this share of the turn."
    )
    character_min_sync: float = Field(
        0.1, ge=-1, le=1, description="A face moved with a turn when its mouth synchrony is at least this (own speech ~0.18-0.48, other speech ~0)."
    )
    character_sync_margin: float = Field(
        0.1, ge=0, le=2, description="...and it beat every other face on screen by this much; a face below min_sync or beaten by this margin counts against."
    )
    character_tie_min_turns: int = Field(
        3, ge=1, description="Turns of a voice in which a face moved with it (as above) needed to tie the two into one character."
    )
    character_tie_min_agreement: float = Field(
        0.8, gt=0.5, le=1, description="...and this share at least of the pair's turns that counted for or against it must be for it."
    )
    character_untie_agreement: float = Field(
        0.6, gt=0, le=1, description="A tie made from evidence is undone when that share falls below this."
    )
    character_settle_seconds: float = Field(
        10.0, gt=0, description="Wait at most this long (wall seconds) for a turn's faces and synchrony before weighing what came."
    )
    recluster: ReclusterConfig = Field(default_factory=ReclusterConfig)
    voice_recluster: VoiceReclusterConfig = Field(default_factory=VoiceReclusterConfig)

    @model_validator(mode="after")
    def _untie_below_tie(self) -> MemoryConfig:
        if self.character_untie_agreement > self.character_tie_min_agreement:
            raise ValueError("character_untie_agreement must not exceed character_tie_min_agreement")
        return self
