"""Face (and voice) memory: identities, re-clustering and a persistent memory graph. Knows nothing of video."""

import importlib
import logging
from typing import TYPE_CHECKING, Any

from .config import MemoryConfig, ReclusterConfig, VoiceReclusterConfig
from .errors import MemoryGraphError, NodeNotFound, StoreError

if TYPE_CHECKING:
    from .core import Memory
    from .records import (FaceObservation, MemoryEvent, Node, NodeKind, NodeStatus, Provenance, SpeakerEvidence, SpeechTurn,
                          TrackEvidence)

logging.getLogger(__name__).addHandler(logging.NullHandler())

# The engine (numpy, faiss) loads on first use: a command that only reads its arguments or its
# config should not wait a second for it.
_LAZY = {
    "Memory": "core",
    **dict.fromkeys(
        ["FaceObservation", "MemoryEvent", "Node", "NodeKind", "NodeStatus", "Provenance", "SpeakerEvidence", "SpeechTurn",
         "TrackEvidence"],
        "records",
    ),
}


def __getattr__(name: str) -> Any:
    if name not in _LAZY:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)


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
    "Provenance",
    "ReclusterConfig",
    "SpeakerEvidence",
    "SpeechTurn",
    "StoreError",
    "TrackEvidence",
    "VoiceReclusterConfig",
]
