"""Clip memories from a language model (optional): frames kept per clip, the request, the worker."""

from .config import MemoriesConfig

__all__ = ["MemoriesConfig"]
