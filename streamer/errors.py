"""One error root for the streamer; each subclass also inherits the matching builtin,
so `except ValueError` or `except OSError` work as a caller expects."""

from __future__ import annotations


class StreamerError(Exception):
    """Root of every error the streamer raises on purpose; its message is one line for the user."""


class ConfigError(StreamerError, ValueError):
    """A setting is missing or out of bounds."""


class SourceError(StreamerError, OSError):
    """A source cannot be opened or read."""


class ModelError(StreamerError, RuntimeError):
    """A face model pack is missing or broken."""


class ShuttingDown(StreamerError, RuntimeError):
    """A stream offered to a run that is ending: it would meet a memory about to close."""


class PublishError(StreamerError, ConnectionError):
    """The MQTT feed cannot start: the broker refused the login or the TLS handshake, or the port is taken."""
