"""What the API, the MCP tools and `streamer ask --json` share: times in, JSON out.

Times in: unix seconds, ISO 8601 ("2026-05-01T09:30", local time unless it carries an offset), or a
span back from now ("-30m", "-2h", "-1d"). Times out: unix seconds, each with an ISO 8601 twin
("start" and "start_iso") so a person or a language model can read them.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from datetime import datetime
from typing import Any

from memory.query.records import Answer

TIME_KEYS = frozenset({"start", "end", "since", "first", "last", "time", "first_seen"})
AGO = re.compile(r"^-(\d+(?:\.\d+)?)\s*([smhd])$")
UNIT_SECONDS = {"s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}


def parse_time(text: str | float | None, clock: Callable[[], float] = time.time) -> float | None:
    """A time the caller gave; ValueError with a message meant for them."""
    if text is None or isinstance(text, (int, float)):
        return None if text is None else float(text)
    value = text.strip()
    if not value:
        return None
    if (m := AGO.match(value)) is not None:
        return clock() - float(m.group(1)) * UNIT_SECONDS[m.group(2)]
    try:
        return float(value)
    except ValueError:
        pass
    try:
        return datetime.fromisoformat(value).timestamp()
    except ValueError:
        raise ValueError(f"cannot read the time {text!r}: give unix seconds, ISO 8601 (2026-05-01T09:30) or -30m, -2h, -1d") from None


def iso(seconds: float) -> str:
    return datetime.fromtimestamp(seconds).astimezone().isoformat(timespec="seconds")


def jsonable(value: Any) -> Any:
    """An answer (records, lists of them) as JSON data, each time with its ISO twin."""
    if isinstance(value, Answer):
        value = value.as_dict()
    if isinstance(value, dict):
        out = {}
        for k, v in value.items():
            out[k] = jsonable(v)
            if k in TIME_KEYS and isinstance(v, (int, float)) and not isinstance(v, bool):
                out[f"{k}_iso"] = iso(v)
        return out
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    return value
