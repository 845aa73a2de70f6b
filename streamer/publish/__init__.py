"""The MQTT feed of the memory: topics and payloads are documented in TOPICS.md."""

from .feed import MemoryFeed, MemoryThreadFeed
from .publisher import Publisher
from .topics import Topics

__all__ = ["MemoryFeed", "MemoryThreadFeed", "Publisher", "Topics"]
