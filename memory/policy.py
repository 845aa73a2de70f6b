"""What differs between face and voice identities; everything else is one machinery.

A policy reads the live config on every call, so a setting changed at run time (a test, a
calibration) takes effect at once, as it did when the numbers were read in place.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass

from .config import MemoryConfig, ReclusterConfig
from .gallery import Vectors
from .nodes import NodeTable
from .recluster import agreement
from .records import NodeKind
from .rows import NodeRow


@dataclass
class Progress:
    """What a provisional node has shown so far, toward its confirmation (kept in memory only)."""

    first_t: float  # stream-time span over which it was observed
    last_t: float
    good_seconds: float = 0.0  # voices: good speech, its number of turns and the longest one
    good_turns: int = 0
    longest_turn: float = 0.0

    def add_speech(self, seconds: float) -> None:
        self.good_seconds += seconds
        self.good_turns += 1
        self.longest_turn = max(self.longest_turn, seconds)

    def absorb_speech(self, other: Progress) -> None:
        self.good_seconds += other.good_seconds
        self.good_turns += other.good_turns
        self.longest_turn = max(self.longest_turn, other.longest_turn)


class KindPolicy(ABC):
    kind: NodeKind
    pairwise_groups: bool  # re-clustering compares groups by mean pairwise cosine, else by mean direction (recluster.centre)

    def __init__(self, cfg: MemoryConfig) -> None:
        self.cfg = cfg

    @property
    @abstractmethod
    def matching_threshold(self) -> float:
        ...

    @property
    @abstractmethod
    def capacity(self) -> int:
        ...

    @property
    @abstractmethod
    def provisional_ttl(self) -> float:
        ...

    @property
    @abstractmethod
    def absent_after(self) -> float:
        ...

    @property
    @abstractmethod
    def recluster(self) -> ReclusterConfig:
        ...

    @abstractmethod
    def ready(self, node: NodeRow, progress: Progress) -> bool:
        """Has a provisional node been seen (or heard) enough to be confirmed?"""
        ...

    @abstractmethod
    def mergeable(self, nodes: NodeTable, survivor: int, other: int) -> bool:
        """May re-clustering merge `other` into `survivor` (two nodes found in one cluster)?"""
        ...


class FacePolicy(KindPolicy):
    kind = NodeKind.FACE
    pairwise_groups = False

    @property
    def matching_threshold(self) -> float:
        return self.cfg.img_matching_threshold

    @property
    def capacity(self) -> int:
        return self.cfg.max_img_embeddings

    @property
    def provisional_ttl(self) -> float:
        return self.cfg.provisional_ttl_seconds

    @property
    def absent_after(self) -> float:
        return self.cfg.absent_after_seconds

    @property
    def recluster(self) -> ReclusterConfig:
        return self.cfg.recluster

    def ready(self, node: NodeRow, progress: Progress) -> bool:
        """confirm_min_faces observations (embedded or not: the streamer embeds a steady face only
        now and then) over confirm_min_seconds of stream time, one of them good."""
        if node.good_faces < 1 or node.n_observations < self.cfg.confirm_min_faces:
            return False
        return progress.last_t - progress.first_t >= self.cfg.confirm_min_seconds

    def mergeable(self, nodes: NodeTable, survivor: int, other: int) -> bool:
        """The cosine between the directions of their mean faces is at least merge_min_similarity."""
        a, b = nodes.unit_mean(survivor), nodes.unit_mean(other)
        return a is not None and b is not None and float(a @ b) >= self.cfg.recluster.merge_min_similarity


class VoicePolicy(KindPolicy):
    kind = NodeKind.VOICE
    pairwise_groups = True

    @property
    def matching_threshold(self) -> float:
        return self.cfg.audio_matching_threshold

    @property
    def capacity(self) -> int:
        return self.cfg.max_audio_embeddings

    @property
    def provisional_ttl(self) -> float:
        return self.cfg.voice_provisional_ttl_seconds

    @property
    def absent_after(self) -> float:
        return self.cfg.voice_absent_after_seconds

    @property
    def recluster(self) -> ReclusterConfig:
        return self.cfg.voice_recluster

    def ready(self, node: NodeRow, progress: Progress) -> bool:
        """Enough good speech over a few turns (one voice heard twice), or one long good turn."""
        cfg = self.cfg
        if progress.longest_turn >= cfg.voice_confirm_long_turn_seconds:
            return True
        return progress.good_turns >= cfg.voice_confirm_min_turns and progress.good_seconds >= cfg.voice_confirm_speech_seconds

    def mergeable(self, nodes: NodeTable, survivor: int, other: int) -> bool:
        """Their turns agree across the two nodes about as well as within them (recluster.agreement).

        A fixed floor alone cannot tell two people of one conversation apart: on the bundled
        conversation different speakers' turns score 0.39 on average and the same speaker's 0.62,
        so two big nodes of different people drift across any floor near 0.4 as their turns change
        (with 0.4 alone, looping the conversation merged its two speakers within minutes). A node's
        own turns are the yardstick: across must come within merge_max_gap of within, and at least
        one node must hold merge_min_turns turns for its own agreement to be measured."""
        return self.same_voice(nodes.gallery(survivor).embeddings, nodes.gallery(other).embeddings)

    def same_voice(self, a: Vectors, b: Vectors) -> bool:
        """The test of `mergeable` on two groups of turn embeddings (k, d)."""
        cfg = self.cfg.voice_recluster
        if not len(a) or not len(b):
            return False
        across, within = agreement(a, b, cfg.merge_min_turns)
        return within is not None and across >= cfg.merge_min_similarity and across >= within - cfg.merge_max_gap


def policies(cfg: MemoryConfig) -> dict[NodeKind, KindPolicy]:
    return {p.kind: p for p in (FacePolicy(cfg), VoicePolicy(cfg))}
