"""`streamer ask` as a user meets it: readable lines, JSON with --json, one-line errors."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from support.asked import ANNA_SAYS, Built


def streamer(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "streamer", *args, "-q"], capture_output=True, text=True, timeout=120)


def _one_line_error(proc: subprocess.CompletedProcess[str], needle: str) -> None:
    assert proc.returncode != 0 and "Traceback" not in proc.stderr
    errors = [line for line in proc.stderr.splitlines() if "error" in line.lower()]
    assert len(errors) == 1 and needle in errors[0], proc.stderr


def test_questions_in_text_and_json(built: Built) -> None:
    db = str(built.db)
    said = streamer("ask", "--db", db, "said", "Anna")
    assert said.returncode == 0, said.stderr
    assert [line.split(": ", 2)[-1] for line in said.stdout.splitlines()] == [f'"{t}"' for t in ANNA_SAYS]
    assert all(" kitchen: Anna (<character_" in line for line in said.stdout.splitlines())
    rows = [json.loads(line) for line in streamer("ask", "said", "anna", "--json", "--db", db).stdout.splitlines()]
    assert [r["text"] for r in rows] == ANNA_SAYS and all(r["voice"] == built.anna_voice and r["start_iso"] for r in rows)
    last = streamer("ask", "--db", db, "last-seen", f"<face_{built.anna_face}>").stdout.splitlines()
    assert last[0] == f"Anna (<character_{built.character}>)" and last[1].startswith("  last seen in 'kitchen' from ")
    assert streamer("ask", "--db", db, "with", "Ben").stdout.startswith(f"Anna (<character_{built.character}>): 1 clips shared, on screen together in 1")
    clip = streamer("ask", "--db", db, "clip", "kitchen", "0").stdout
    assert "Episodic memories:" in clip and f'Anna (<voice_{built.anna_voice}>) says: "My sister lives in Lisbon."' in clip
    search = streamer("ask", "--db", db, "search", "who", "has", "family", "in", "Portugal").stdout.splitlines()
    assert search[0].startswith("[meaning]") and "Lisbon" in search[0]
    assert streamer("ask", "--db", db, "who-is-here").stdout.strip() == "(nothing)"


def test_bad_questions_give_one_line(built: Built, tmp_path: Path) -> None:
    db = str(built.db)
    _one_line_error(streamer("ask", "--db", db, "last-seen", "Zoe"), "nobody called 'Zoe' in the memory")
    _one_line_error(streamer("ask", "--db", db, "said", "Anna", "--since", "yesterday"), "cannot read the time 'yesterday'")
    _one_line_error(streamer("ask", "--db", db, "seen"), "seen needs --since")
    _one_line_error(streamer("ask", "--db", db, "clip", "kitchen", "9"), "no clip 9 of stream 'kitchen'")
    _one_line_error(streamer("ask", "--db", str(tmp_path / "none.db"), "people"), "memory database not found")
    _one_line_error(streamer("run", str(tmp_path / "none.mp4"), "--api", "0.0.0.0:8099"), "give it a token")
