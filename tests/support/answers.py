"""What `streamer export` and `streamer ask` print about a memory, to compare two stores of one memory."""

from __future__ import annotations

import json

import pytest

from streamer import cli

EXPORTS = ("nodes", "faces", "voices", "characters", "events")


def streamer(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    """`streamer ARGS` in this process: (exit code, stdout, stderr)."""
    code = cli.main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def answers(capsys: pytest.CaptureFixture[str], db: str, asked: list[list[str]]) -> list[str]:
    """Every export and the `asked` questions (as JSON); each must succeed, the exports must hold rows."""
    printed = []
    for what in EXPORTS:
        code, out, err = streamer(capsys, "export", what, "--db", db)
        assert code == 0 and (out or what == "characters"), (what, err)
        printed.append(out)
    for question in asked:
        code, out, err = streamer(capsys, "ask", *question, "--json", "--db", db)
        assert code == 0, (question, err)
        printed.append(out)
    return printed


def people_asked(capsys: pytest.CaptureFixture[str], db: str) -> list[list[str]]:
    """Questions about whoever a memory holds: everyone, who is here, and each person's sightings, words and company."""
    code, out, _ = streamer(capsys, "ask", "people", "--json", "--db", db)
    assert code == 0
    tags = [json.loads(line)["tag"] for line in out.splitlines()]
    asked = [["people"], ["who-is-here"], ["seen", "--since", "0"]]
    return asked + [[q, tag] for tag in tags for q in ("last-seen", "said", "with")]
