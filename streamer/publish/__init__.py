"""The MQTT feed of the memory: topics and payloads are documented in the README ("MQTT feed")."""

from .feed import MemoryFeed, MemoryThreadFeed
from .publisher import Publisher
from .topics import Topics

__all__ = ["MemoryFeed", "MemoryThreadFeed", "Publisher", "Topics"]
