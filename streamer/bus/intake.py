"""The memory service's intake: a child process that reads the bus for the memory's process.

The NATS client, the JetStream bookkeeping of each message and the parsing of messages take about a
third of the memory service's CPU; in the memory's own process they held the interpreter's lock
against the memory thread. Here they run beside it: the intake fetches from the durable consumer,
parses the messages (faces as plain rows, `messages.parse`) and hands them over in parts of about
`PART_ROWS` rows, each applied and committed at once by the memory's process. It keeps every part's
messages until the memory's process says the part is committed, then acknowledges them and sends
each worker the nodes of its tracks: nothing is acknowledged before its effects are committed. At
most `PARTS_AHEAD` parts wait to be committed: the intake fetches no more until one is.

The intake ignores SIGINT and SIGTERM (the memory's process stops it, after its last commit) and
exits when the memory's process goes away.
"""

from __future__ import annotations

import asyncio
import json
import logging
import signal
import threading
from collections import deque
from dataclasses import dataclass
from multiprocessing.connection import Connection

from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.errors import TimeoutError as NatsTimeoutError
from nats.js import JetStreamContext, api
from nats.js.errors import FetchTimeoutError, NotFoundError

from ..errors import StreamerError
from .connection import BusConfig, bucket, connect, ensure_stream
from .messages import BadMessage, FacesRows, Parsed, TurnsMsg, parse
from .track_ids import reserve

log = logging.getLogger(__name__)

CONSUMER = "memory"
FETCH = 5000  # messages fetched at once at most: a backlog is taken in big bites
FETCH_WAIT_SECONDS = 0.2
PARTS_AHEAD = 2  # parts handed over and not yet committed, at most
FLUSH_SECONDS = 2.0


@dataclass
class Part:
    """Messages in the stream's order, applied and committed as one by the memory's process."""

    n: int  # the intake's parts counted from 1
    seqs: list[int]  # each message's stream sequence
    messages: list[Parsed | None]  # None: not one of ours (logged here), only moves the bookmark
    stored: list[float]  # when the server stored each message (unix seconds)
    pending: int  # messages in the stream not yet delivered, after this part


@dataclass
class Ready:
    """The intake is subscribed and fetching."""


@dataclass
class Failed:
    reason: str  # one line: the intake could not start (the bus unreachable, refused...)


@dataclass
class Committed:
    n: int  # the part committed
    answers: dict[str, dict[int, int | None]]  # worker -> {track: node}


def rows(m: Parsed | None) -> int:
    if isinstance(m, FacesRows):
        return len(m.faces)
    return len(m.turns) if isinstance(m, TurnsMsg) else 1


def main(conn: Connection, cfg: BusConfig, start: int, floor: int, level: int, part_rows: int) -> None:
    """The intake process: consume from stream sequence `start`, track ids above `floor`."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s", datefmt="%H:%M:%S")
    try:
        asyncio.run(_Intake(conn, cfg, part_rows).run(start, floor))
    except (EOFError, BrokenPipeError):
        pass  # the memory's process is gone
    except StreamerError as e:
        conn.send(Failed(str(e)))
        raise SystemExit(1) from None
    except Exception as e:  # anything else: said in one line, and the memory's process decides
        conn.send(Failed(f"{type(e).__name__}: {e}"))
        raise SystemExit(1) from None


class _Intake:
    def __init__(self, conn: Connection, cfg: BusConfig, part_rows: int) -> None:
        self._conn = conn
        self._cfg = cfg
        self._part_rows = part_rows
        self._parts = 0
        self._waiting: deque[tuple[int, Msg]] = deque()  # (part, its last message) until committed

    async def run(self, start: int, floor: int) -> None:
        notices: asyncio.Queue[Committed | None] = asyncio.Queue()
        loop = asyncio.get_running_loop()
        threading.Thread(target=self._listen, args=(loop, notices), name="intake-listen", daemon=True).start()
        # the service may stop, or die, while the intake still waits for the bus
        starting = asyncio.ensure_future(self._start(start, floor))
        stopped = asyncio.ensure_future(notices.get())
        await asyncio.wait({starting, stopped}, return_when=asyncio.FIRST_COMPLETED)
        if stopped.done():
            starting.cancel()
            await asyncio.gather(starting, return_exceptions=True)
            return
        stopped.cancel()
        nc, sub = starting.result()
        try:
            self._conn.send(Ready())
            slots = asyncio.Semaphore(PARTS_AHEAD)
            fetching = asyncio.create_task(self._fetch(sub, slots))
            try:
                while (notice := await self._next_notice(notices, fetching)) is not None:
                    n, last = self._waiting.popleft()
                    assert n == notice.n, f"part {notice.n} committed, {n} expected"
                    await last.ack()  # AckPolicy.ALL: every message up to this one
                    for worker, nodes in notice.answers.items():
                        await nc.publish(self._cfg.nodes_subject(worker), json.dumps(nodes).encode())
                    slots.release()
            finally:
                fetching.cancel()
                await asyncio.gather(fetching, return_exceptions=True)
            try:
                await nc.flush(timeout=FLUSH_SECONDS)  # the last acknowledgements and nodes, if the bus is there
            except Exception as e:
                log.debug("bus: not flushed at the end (%s)", e)
        finally:
            await nc.close()

    async def _start(self, start: int, floor: int) -> tuple[Client, JetStreamContext.PullSubscription]:
        nc = await connect(self._cfg, "streamer-memory-intake")
        try:
            js = nc.jetstream()
            await ensure_stream(js, self._cfg)
            # workers take track ids from the bus's counter: it starts above any id the store handed out
            await reserve(await bucket(js, f"{self._cfg.prefix}_ids"), 1, at_least=floor)
            sub = await self._subscribe(js, start)
        except BaseException:
            await nc.close()
            raise
        log.info("bus: applying observations from stream sequence %d", start)
        return nc, sub

    @staticmethod
    async def _next_notice(notices: asyncio.Queue[Committed | None], fetching: asyncio.Task[None]) -> Committed | None:
        """The next notice; if fetching failed, its error (the intake exits, and is started again)."""
        getter = asyncio.ensure_future(notices.get())
        await asyncio.wait({getter, fetching}, return_when=asyncio.FIRST_COMPLETED)
        if not getter.done():
            getter.cancel()
            fetching.result()
        return getter.result()

    async def _subscribe(self, js: JetStreamContext, start: int) -> JetStreamContext.PullSubscription:
        """The durable consumer, placed right after what the store holds (not where acks left it:
        a part may have been committed and not acknowledged, or acknowledged by an older store)."""
        try:
            await js.delete_consumer(self._cfg.stream, CONSUMER)
        except NotFoundError:
            pass
        config = api.ConsumerConfig(
            deliver_policy=api.DeliverPolicy.BY_START_SEQUENCE, opt_start_seq=start, ack_policy=api.AckPolicy.ALL,
            ack_wait=60.0, max_ack_pending=-1, max_deliver=-1,
        )  # fmt: skip
        return await js.pull_subscribe(f"{self._cfg.prefix}.obs.>", durable=CONSUMER, stream=self._cfg.stream, config=config)

    def _listen(self, loop: asyncio.AbstractEventLoop, notices: asyncio.Queue[Committed | None]) -> None:
        """Thread: the memory's process's notices; None (stop, or the process is gone) ends the intake."""
        while True:
            try:
                notice = self._conn.recv()
            except (EOFError, OSError):
                notice = None
            loop.call_soon_threadsafe(notices.put_nowait, notice)
            if notice is None:
                return

    async def _fetch(self, sub: JetStreamContext.PullSubscription, slots: asyncio.Semaphore) -> None:
        while True:
            try:
                msgs = await sub.fetch(FETCH, timeout=FETCH_WAIT_SECONDS)
            except (FetchTimeoutError, NatsTimeoutError, asyncio.TimeoutError):
                continue
            except Exception as e:  # the bus is restarting: the client reconnects by itself
                log.debug("bus: fetch failed (%s)", e)
                await asyncio.sleep(0.5)
                continue
            start, count = 0, 0
            parsed: list[Parsed | None] = []
            for i, msg in enumerate(msgs):
                parsed.append(self._parse(msg))
                count += rows(parsed[-1])
                if count >= self._part_rows or i == len(msgs) - 1:
                    await slots.acquire()
                    await self._hand_over(msgs[start : i + 1], parsed)
                    parsed, start, count = [], i + 1, 0

    def _parse(self, msg: Msg) -> Parsed | None:
        try:
            return parse(msg.data)
        except BadMessage as e:
            log.warning("bus: skipped a message on %s: %s", msg.subject, e)
            return None

    async def _hand_over(self, msgs: list[Msg], parsed: list[Parsed | None]) -> None:
        self._parts += 1
        metas = [msg.metadata for msg in msgs]
        seqs, stored = [m.sequence.stream for m in metas], [m.timestamp.timestamp() for m in metas]
        part = Part(self._parts, seqs, parsed, stored, metas[-1].num_pending)
        self._waiting.append((part.n, msgs[-1]))
        await asyncio.to_thread(self._conn.send, part)  # the pipe may be full while the other side applies
