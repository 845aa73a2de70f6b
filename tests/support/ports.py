"""A free TCP port on the loopback, for a server a test starts."""

from __future__ import annotations

import socket


def free_port() -> int:
    """One the kernel has just handed out (so from its ephemeral range); free until someone binds it."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])
