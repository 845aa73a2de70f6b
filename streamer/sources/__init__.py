"""Video sources: files and live cameras, decoded in worker threads, sampled by timestamp."""

from .base import Source, StateCallback
from .factory import is_live_url, open_source
from .state import SourceState, SourceStats

__all__ = ["Source", "SourceState", "SourceStats", "StateCallback", "is_live_url", "open_source"]
