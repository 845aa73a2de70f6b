"""The PostgreSQL server restarts mid-run: the memory waits for it, loses nothing it had applied but
not yet committed, and goes on; a reader reconnects by itself; a COMMIT cut off on its way (a relay
on the network path drops the connection) is applied exactly once; a question asked while the server
is away fails at once with one line. On a server of this module's own,
since it is stopped and started again."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
from support.asked import build
from support.postgres import PostgresServer, need_server
from support.realfaces import FaceBank
from support.scenario import Clock, Scene

from memory import Memory, MemoryConfig
from memory.database import open_database
from memory.errors import StoreError
from memory.link import LinkState
from memory.query import MemoryQuery
from memory.query.embedder import SentenceEmbedder

from streamer import cli
from streamer.metrics import StoreCollector


@pytest.fixture(scope="module")
def server() -> Iterator[PostgresServer]:
    with PostgresServer(need_server()) as pg:
        yield pg


def _until(check: Any, what: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


Stored = tuple[list[dict[str, Any]], list[tuple[int, str, str]], list[int]]  # nodes, events, crops per node


def _run(url: str, bank: FaceBank, outage: PostgresServer | None) -> Stored:
    """Three people, the second one's faces applied but not committed when the server goes away (if
    `outage`); the third comes while it is away. Returns what was stored."""
    clock = Clock()
    with Memory(MemoryConfig(db=url), clock=clock) as memory:
        scene = Scene(memory, clock, bank)
        scene.show(0, 6)
        memory.flush()
        scene.show(1, 6)  # its node, its event and its crop are in the open transaction
        assert memory._store.db.in_transaction
        link = memory.store_link()
        assert link is not None
        if outage is not None:
            outage.halt()
            later = threading.Thread(target=scene.show, args=(2, 6))  # the memory's thread, waiting for the server
            later.start()
            _until(lambda: link.losses == 1, "the lost connection noticed")
            assert later.is_alive() and not link.connected
            outage.resume()
            later.join(120)
            assert not later.is_alive() and link.connected and link.replayed > 0
            scraped = {m.name: m.samples[0].value for m in StoreCollector(link).collect()}
            assert scraped == {"streamer_memory_store_connected": 1.0, "streamer_memory_store_connection_losses": 1.0,
                               "streamer_memory_store_replayed_statements": float(link.replayed)}  # fmt: skip
        else:
            scene.show(2, 6)
        memory.flush()
    with Memory(MemoryConfig(db=url), clock=clock) as memory:
        nodes = list(memory.export_nodes())
        events = [(e.seq, e.type, e.id) for e in memory.events_after(0, limit=1000)]
        crops = [len(memory.crops(n["id"])) for n in nodes]
    return nodes, events, crops


def test_a_server_restart_mid_run_loses_nothing(server: PostgresServer, bank: FaceBank) -> None:
    restarted = _run(server.database(), bank, server)
    uninterrupted = _run(server.database(), bank, None)
    nodes, events, crops = restarted
    assert [n["id"] for n in nodes] == [n["id"] for n in uninterrupted[0]] and len(nodes) == 3
    assert nodes == uninterrupted[0]  # the same memory, row for row
    assert [e[:2] for e in events] == [e[:2] for e in uninterrupted[1]]  # the same events, numbered alike
    assert len({e[2] for e in events}) == len(events)  # none applied twice
    assert crops == uninterrupted[2] and all(crops)


def test_a_reader_reconnects_after_a_restart(server: PostgresServer) -> None:
    url = server.database()
    Memory(MemoryConfig(db=url)).close()
    reader = open_database(url, read_only=True)
    assert reader.scalar("SELECT value FROM meta WHERE key = 'schema_version'") is not None
    server.halt()
    server.resume()
    assert reader.scalar("SELECT value FROM meta WHERE key = 'schema_version'") is not None
    assert reader.link is not None and reader.link.state.losses == 1
    reader.close()


class CuttingRelay:
    """A TCP relay to the server that cuts the first connection whose client sends COMMIT: before
    passing it on (the server never sees it), or once the server has answered, without passing the
    answer back (it is lost). Later connections are relayed as they are."""

    def __init__(self, server_port: int, answer_lost: bool) -> None:
        self._server_port, self._answer_lost = server_port, answer_lost
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        self.cut = threading.Event()
        self._armed = True
        threading.Thread(target=self._accept, daemon=True).start()

    def close(self) -> None:
        self._listener.close()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            server = socket.create_connection(("127.0.0.1", self._server_port))
            cutting = threading.Event()  # the COMMIT went on: the next answer is dropped with the connection
            threading.Thread(target=self._up, args=(client, server, cutting), daemon=True).start()
            threading.Thread(target=self._down, args=(server, client, cutting), daemon=True).start()

    def _up(self, client: socket.socket, server: socket.socket, cutting: threading.Event) -> None:
        while data := _recv(client):
            if self._armed and b"COMMIT" in data:
                self._armed = False
                if not self._answer_lost:
                    return self._hang_up(client, server)
                cutting.set()
            server.sendall(data)

    def _down(self, server: socket.socket, client: socket.socket, cutting: threading.Event) -> None:
        while data := _recv(server):
            if cutting.is_set():
                return self._hang_up(client, server)
            client.sendall(data)

    def _hang_up(self, *sockets: socket.socket) -> None:
        for s in sockets:
            s.shutdown(socket.SHUT_RDWR)
            s.close()
        self.cut.set()


def _recv(s: socket.socket) -> bytes:
    try:
        return s.recv(65536)
    except OSError:
        return b""


@pytest.mark.parametrize("answer_lost", [True, False], ids=["answer-lost", "never-arrived"])
def test_a_commit_cut_off_is_applied_once(server: PostgresServer, answer_lost: bool) -> None:
    url = server.database()
    admin = open_database(url)
    admin.execute("CREATE TABLE seen (id BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY, name TEXT)")
    relay = CuttingRelay(server.port, answer_lost)
    db = open_database(url.replace(f":{server.port}/", f":{relay.port}/"))
    db.begin()
    given = db.execute("INSERT INTO seen (name) VALUES (?) RETURNING id", ("ann",)).fetchall()[0][0]
    db.execute("UPDATE seen SET name = name || '!'")
    db.commit()
    assert relay.cut.is_set()
    assert admin.execute("SELECT id, name FROM seen").fetchall() == [(given, "ann!")]  # once, with the id it was given
    assert db.link is not None
    assert db.link.state == LinkState(connected=True, losses=1, replayed=0 if answer_lost else 2)
    db.close()
    relay.close()
    admin.close()


def test_ids_replayed_are_not_handed_out_again(server: PostgresServer) -> None:
    """A server that lost the ids it handed out (its sequence set back, as a crash may): the replay
    raises the sequence past the ids it replays, and raising it never lowers it."""
    url = server.database()
    admin = open_database(url)
    admin.execute("CREATE TABLE seen (id BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY, name TEXT)")
    admin.execute("INSERT INTO seen (name) VALUES ('a'), ('b'), ('c')")
    relay = CuttingRelay(server.port, answer_lost=False)
    db = open_database(url.replace(f":{server.port}/", f":{relay.port}/"))
    db.begin()
    given = db.execute("INSERT INTO seen (name) VALUES (?) RETURNING id", ("ann",)).fetchall()[0][0]
    admin.execute("SELECT setval(pg_get_serial_sequence('seen', 'id'), 1, false)")
    db.commit()  # cut before the server saw it: replayed
    assert relay.cut.is_set() and db.link is not None and db.link.state.replayed == 1
    assert db.link.high_water("seen", "id") == given == 4
    db.link.raise_high_water("seen", "id", 2)
    assert db.link.high_water("seen", "id") == given
    db.link.raise_high_water("seen", "id", 10)
    assert db.execute("INSERT INTO seen (name) VALUES (?) RETURNING id", ("ben",)).fetchall() == [(11,)]
    db.close()
    relay.close()
    admin.close()


class HaltingEmbedder(SentenceEmbedder):
    """The real sentence model; the server goes away while it embeds a question's new texts (after the
    question's first read, before the vectors are stored)."""

    def __init__(self, server: PostgresServer) -> None:
        super().__init__()
        self._server = server
        self.halted = False

    def passages(self, texts: list[str]) -> Any:
        if not self.halted:
            self.halted = True
            self._server.halt()
        return super().passages(texts)


def _fails(ask: Any) -> str:
    """The error a question raises; the test fails if it waits out the outage instead (it hangs)."""
    raised: list[BaseException] = []
    asking = threading.Thread(target=lambda: _catch(ask, raised), daemon=True)
    asking.start()
    asking.join(60)
    assert not asking.is_alive(), "a question waited for the server to come back"
    assert len(raised) == 1 and isinstance(raised[0], StoreError), raised
    return str(raised[0])


def _catch(ask: Any, raised: list[BaseException]) -> None:
    try:
        ask()
    except BaseException as e:  # noqa: BLE001 (handed to the test)
        raised.append(e)


def test_a_question_while_the_server_is_away_fails_with_one_line(
    server: PostgresServer, bank: FaceBank, capsys: pytest.CaptureFixture[str]
) -> None:
    url = server.database()
    build(url, bank)
    embedder = HaltingEmbedder(server)
    try:
        with MemoryQuery(url, embedder=embedder) as query:
            assert query.people()
            message = _fails(lambda: query.search("who has family in Portugal"))  # halted while embedding
            assert embedder.halted and "\n" not in message and url.rsplit("/", 1)[0] in message
            for ask in (query.people, lambda: query.last_seen("Anna"), lambda: query.search("Lisbon")):
                assert "\n" not in _fails(ask)
            assert cli.main(["ask", "--db", url, "people"]) == 2
            err = capsys.readouterr().err
            assert err.startswith("streamer: error: cannot connect to") and err.count("\n") == 1
            server.resume()
            assert "Lisbon" in query.search("who has family in Portugal")[0].text  # the next question works
    finally:
        if not (server.data / "postmaster.pid").exists():  # for the next tests, whatever happened
            server.resume()
    reader = open_database(url, read_only=True)
    assert reader.scalar("SELECT COUNT(*) FROM text_vectors")  # ...and stored the vectors
    reader.close()
