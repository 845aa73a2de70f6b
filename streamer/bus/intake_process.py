"""The memory's process's end of the intake (streamer.bus.intake): start it, take its parts, say
what is committed, stop it.

A thread receives the intake's parts (plain rows, cheap to unpickle; their records are built on the
memory thread, which holds the interpreter's lock most of the time anyway); the intake keeps at most
`intake.PARTS_AHEAD` parts uncommitted, which bounds what waits here.
"""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from .connection import BusConfig
from .intake import Committed, Failed, Part, Ready, main

log = logging.getLogger(__name__)

STOP_SECONDS = 10.0  # for the intake to acknowledge what is committed and close its connection


@dataclass
class Exited:
    """The intake process ended (it died or failed): a new one must be started."""

    code: int | None
    reason: str | None = None

    def __str__(self) -> str:
        return f"exited with code {self.code}" + (f" ({self.reason})" if self.reason else "")


class IntakeProcess:
    def __init__(self, cfg: BusConfig, part_rows: int) -> None:
        self._cfg = cfg
        self._part_rows = part_rows
        self._queue: asyncio.Queue[Part | Ready | Exited] = asyncio.Queue()
        self._ctx = multiprocessing.get_context("spawn")  # not a fork of a process with threads and a memory open
        self._conn, self._child = self._ctx.Pipe()
        self._sender = ThreadPoolExecutor(max_workers=1, thread_name_prefix="intake-send")

    async def start(self, start: int, floor: int) -> str | None:
        """Started, reading from stream sequence `start`; None once it is ready, else why it is not."""
        args = (self._child, self._cfg, start, floor, logging.getLogger().getEffectiveLevel(), self._part_rows)
        self._proc = self._ctx.Process(target=main, args=args, name="streamer-intake", daemon=True)
        self._proc.start()
        self._child.close()  # the intake's end lives in the intake: its exit is seen as the end of the pipe
        loop = asyncio.get_running_loop()
        threading.Thread(target=self._receive, args=(loop,), name="intake-receive", daemon=True).start()
        try:
            first = await self._queue.get()
        except BaseException:  # stopped while the intake waits for the bus: it ignores SIGTERM
            self._proc.kill()
            raise
        if isinstance(first, Ready):
            return None
        await asyncio.to_thread(self._proc.join, STOP_SECONDS)
        assert isinstance(first, Exited)
        return first.reason or str(first)

    async def next(self) -> Part | Exited:
        item = await self._queue.get()
        assert not isinstance(item, Ready)
        return item

    def committed(self, n: int, answers: dict[str, dict[int, int | None]]) -> None:
        """Part `n` is committed: the intake acknowledges it and sends the workers their nodes. Sent
        by a thread of its own, in order, while the memory thread goes on with the next part."""
        self._sender.submit(self._send, Committed(n, answers))

    def _send(self, notice: Committed | None) -> None:
        try:
            self._conn.send(notice)
        except OSError:
            pass  # the intake died: its end is reported by the receiving thread

    async def stop(self) -> None:
        """After the last commit: the intake acknowledges what it was told, then closes."""
        self._sender.submit(self._send, None)
        await asyncio.to_thread(self._sender.shutdown)
        await asyncio.to_thread(self._proc.join, STOP_SECONDS)
        if self._proc.exitcode is None:
            log.warning("bus: the intake process did not stop in %.0f s: killed", STOP_SECONDS)
            self._proc.kill()
            await asyncio.to_thread(self._proc.join)
        self._conn.close()

    def _receive(self, loop: asyncio.AbstractEventLoop) -> None:
        """Thread: what the intake sends, until its end of the pipe closes."""
        reason = None
        while True:
            try:
                item = self._conn.recv()
            except (EOFError, OSError):
                break
            if isinstance(item, Failed):
                reason = item.reason
                continue
            loop.call_soon_threadsafe(self._queue.put_nowait, item)
        self._proc.join(STOP_SECONDS)
        try:
            loop.call_soon_threadsafe(self._queue.put_nowait, Exited(self._proc.exitcode, reason))
        except RuntimeError:
            pass  # the service has ended: nobody waits for it
