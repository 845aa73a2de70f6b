"""`streamer ask`: questions to a memory file from the command line, as readable lines or JSON (its
arguments: streamer.ask_args, which a run need not import this for)."""

from __future__ import annotations

import argparse
import json
import time
from typing import Any

from memory.query import Clip, Companion, Hit, LastSeen, MemoryQuery, Person, Present, Sighting, Utterance, Visit

from .api.answers import jsonable, parse_time
from .errors import StreamerError


def ask(args: argparse.Namespace, db: str) -> list[str]:
    """The lines to print."""
    opt = vars(args)
    since, until = _time(opt.get("since")), _time(opt.get("until"))
    with MemoryQuery(db) as query:
        q = args.question
        if q == "who-is-here":
            answer: Any = query.present(opt.get("stream"))
        elif q == "seen":
            if since is None:
                raise StreamerError("seen needs --since (ISO 8601, unix seconds or -30m, -2h, -1d)")
            answer = query.seen_between(since, until, opt.get("stream"))
        elif q == "people":
            answer = query.people()
        elif q == "last-seen":
            answer = query.last_seen(args.person)
        elif q == "said":
            answer = query.said(args.person, since, until, opt.get("limit", 100))
        elif q == "with":
            answer = query.together(args.person, since, until)
        elif q == "clip":
            answer = query.clip(args.stream_name, args.index)
        else:
            answer = query.search(" ".join(args.text), opt.get("limit", 10))
    if opt.get("json"):
        rows = answer if isinstance(answer, list) else [answer]
        return [json.dumps(jsonable(r)) for r in rows]
    return text_of(answer)


def _time(value: str | None) -> float | None:
    try:
        return parse_time(value)
    except ValueError as e:
        raise StreamerError(str(e)) from None


def when(seconds: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(seconds))


def _visit(verb: str, v: Visit | None) -> str:
    if v is None:
        return f"  never {verb}"
    return f"  last {verb} in '{v.stream}' from {when(v.start)} to {when(v.end)} ({v.seconds:.0f} s)"


def text_of(answer: Any) -> list[str]:
    if isinstance(answer, list):
        if not answer:
            return ["(nothing)"]
        return [line for item in answer for line in text_of(item)]
    if isinstance(answer, Person):
        return [f"{answer.name}: faces {list(answer.faces)}, voices {list(answer.voices)}"]
    if isinstance(answer, Present):
        return [f"{answer.stream}: {answer.person.name} since {when(answer.since)}"]
    if isinstance(answer, Sighting):
        how = " and ".join(w for w, on in (("seen", answer.seen), ("heard", answer.heard)) if on)
        return [f"{answer.stream}: {answer.person.name} {how} from {when(answer.first)} to {when(answer.last)}"]
    if isinstance(answer, LastSeen):
        return [answer.person.name, _visit("seen", answer.seen), _visit("heard", answer.heard)]
    if isinstance(answer, Utterance):
        return [f"{when(answer.start)} {answer.stream}: {answer.speaker}: \"{answer.text}\""]
    if isinstance(answer, Companion):
        return [f"{answer.person.name}: {answer.clips} clips shared, on screen together in {answer.together}, "
                f"in {', '.join(answer.streams)}, last {when(answer.last)}"]  # fmt: skip
    if isinstance(answer, Hit):
        where = f"{answer.stream} clip {answer.clip}" if answer.clip is not None else answer.stream or answer.source
        at = when(answer.time) if answer.time is not None else ""
        return [f"[{answer.match}] {at} {where}: {answer.text}"]
    if isinstance(answer, Clip):
        return _clip_lines(answer)
    raise TypeError(f"no text form for {type(answer).__name__}")


def _clip_lines(clip: Clip) -> list[str]:
    lines = [f"clip {clip.index} of '{clip.stream}': {when(clip.start)} to {when(clip.end)} "
             f"(stream seconds {clip.t_start:.1f} to {clip.t_end:.1f})", "", "Episodic memories:"]  # fmt: skip
    lines += [f"  {m.text}" for m in clip.episodic] or ["  (none)"]
    lines += ["", "Semantic memories:"]
    lines += [f"  {m.text}" for m in clip.semantic] or ["  (none)"]
    lines += ["", "People:"]
    lines += [f"  {p.name}" for p in clip.people] or ["  (none)"]
    if clip.speech:
        lines += ["", "Speech:"]
        lines += [f"  {u.t_start:7.1f}-{u.t_end:7.1f} s  {u.speaker}: " + (f'"{u.text}"' if u.text else "(no transcript)") for u in clip.speech]
    return lines
