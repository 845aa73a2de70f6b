"""`streamer db copy`: a memory moved from a file into PostgreSQL and back answers alike, ids and all;
the source is only read; a destination holding a memory is refused unless replaced; bad input is one
line and a non-zero exit. On support.asked's memory (faces, voices, transcripts, a character, labels)."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import pytest
from support.answers import answers, people_asked, streamer
from support.asked import Built
from support.postgres import PostgresServer

ASKED = [["clip", "kitchen", "0"], ["search", "who has family in Portugal"]]


def test_a_file_moved_to_postgresql_and_back_answers_alike(
    original: Built, postgres: PostgresServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    src = tmp_path / "memory.db"
    shutil.copy(original.db, src)
    asked = people_asked(capsys, str(src)) + ASKED
    expected = answers(capsys, str(src), asked)  # `ask search` stores the texts' sentence embeddings
    url = postgres.database()
    before = hashlib.sha256(src.read_bytes()).hexdigest()
    code, out, err = streamer(capsys, "db", "copy", str(src), url)
    assert code == 0 and out.startswith("copied ") and "error" not in err, err
    assert hashlib.sha256(src.read_bytes()).hexdigest() == before  # only read
    assert answers(capsys, url, asked) == expected
    back = tmp_path / "back.db"
    assert streamer(capsys, "db", "copy", url, str(back))[0] == 0
    assert answers(capsys, str(back), asked) == expected
    events = [json.loads(line)["seq"] for line in streamer(capsys, "export", "events", "--db", url)[1].splitlines()]
    assert streamer(capsys, "node", "label", str(original.cleo_face), "Cleo", "--db", url)[0] == 0  # the copy goes on
    after = [json.loads(line)["seq"] for line in streamer(capsys, "export", "events", "--db", url)[1].splitlines()]
    assert after[: len(events)] == events and after[len(events)] == max(events) + 1


def test_a_destination_holding_a_memory_is_refused_unless_replaced(
    original: Built, postgres: PostgresServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    src = tmp_path / "memory.db"
    shutil.copy(original.db, src)
    url = postgres.database()
    assert streamer(capsys, "db", "copy", str(src), url)[0] == 0
    expected = answers(capsys, url, ASKED)
    code, _, err = streamer(capsys, "db", "copy", str(src), url)
    assert code == 2 and err.count("\n") == 1 and "holds a memory already" in err and "--replace" in err
    assert answers(capsys, url, ASKED) == expected  # left as it was
    assert streamer(capsys, "db", "copy", str(src), url, "--replace")[0] == 0
    assert answers(capsys, url, ASKED) == expected


@pytest.mark.parametrize(
    ("src", "dst", "needle"),
    [
        ("none.db", "out.db", "memory database not found: none.db"),
        ("{db}", "mysql://host/memory", "not a mysql:// URL"),
        ("{db}", "postgresql://streamer:secret@127.0.0.1:1/memory", "cannot connect to postgresql://streamer:***@127.0.0.1:1/memory"),
        ("{db}", "{db}", "is both the source and the destination"),
        ("notes.txt", "out.db", "notes.txt is not a memory database"),
    ],
)
def test_bad_input_is_one_line(
    original: Built, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, src: str, dst: str, needle: str
) -> None:
    monkeypatch.chdir(tmp_path)
    shutil.copy(original.db, tmp_path / "memory.db")
    (tmp_path / "notes.txt").write_text("not a memory")
    code, out, err = streamer(capsys, "db", "copy", src.format(db="memory.db"), dst.format(db="memory.db"))
    assert code == 2 and not out and err.count("\n") == 1 and needle in err, err
    assert "secret" not in err and not (tmp_path / "out.db").exists()
