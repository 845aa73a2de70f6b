"""Face (and voice) memory: identities, re-clustering and a persistent memory graph. Knows nothing of video."""

import logging

from .config import MemoryConfig, ReclusterConfig, VoiceReclusterConfig
from .core import Memory
from .errors import MemoryGraphError, NodeNotFound, StoreError
from .records import FaceObservation, MemoryEvent, Node, NodeKind, NodeStatus, SpeechTurn, TrackEvidence

logging.getLogger(__name__).addHandler(logging.NullHandler())

__all__ = [
    "FaceObservation",
    "Memory",
    "MemoryConfig",
    "MemoryEvent",
    "MemoryGraphError",
    "Node",
    "NodeKind",
    "NodeNotFound",
    "NodeStatus",
    "ReclusterConfig",
    "SpeechTurn",
    "StoreError",
    "TrackEvidence",
    "VoiceReclusterConfig",
]
