"""Where a restarted memory service resumes: the stream sequence noted with the last commit."""

from __future__ import annotations

from pathlib import Path

from memory import Memory
from memory.config import MemoryConfig
from streamer.bus.service import SEQ, apply_batch


def test_a_late_resend_does_not_move_the_resume_point_back(tmp_path: Path) -> None:
    db = str(tmp_path / "memory.db")
    with Memory(MemoryConfig(db=db)) as memory:
        apply_batch(memory, [(7, None), (8, None)], {})  # None: unreadable messages, which only move the bookmark
        # a message of sequence 5, unacknowledged past the ack wait, is delivered again after 8
        apply_batch(memory, [(5, None), (9, None)], {})
        apply_batch(memory, [(6, None)], {})
    with Memory(MemoryConfig(db=db)) as memory:
        assert memory.bookmark(SEQ) == "9"
