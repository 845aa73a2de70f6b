"""The arguments of `streamer ask`, apart from its answers: the answers import the query side of the
memory (its sentence embedder, numpy), which parsing the arguments need not."""

from __future__ import annotations

import argparse

QUESTIONS = ("who-is-here", "seen", "last-seen", "said", "with", "clip", "search", "people")


def add_questions(ask: argparse.ArgumentParser, common: argparse.ArgumentParser) -> None:
    """The questions of `ask`; `common` adds --db and friends to each (after the question too)."""
    questions = ask.add_subparsers(dest="question", required=True, metavar="QUESTION")
    opts = argparse.ArgumentParser(add_help=False)
    opts.add_argument("--json", action="store_true", default=argparse.SUPPRESS, help="print JSON instead of text")
    for name, text in (("since", "from this time"), ("until", "up to this time (default now)")):
        opts.add_argument(f"--{name}", default=argparse.SUPPRESS, metavar="TIME", help=f"{text}: ISO 8601, unix seconds or -30m, -2h, -1d")
    opts.add_argument("--stream", default=argparse.SUPPRESS, help="only this stream (camera)")
    opts.add_argument("--limit", type=int, default=argparse.SUPPRESS, help="at most this many answers")
    parents = [opts, common]
    questions.add_parser("who-is-here", parents=parents, help="who is in each stream now")
    questions.add_parser("seen", parents=parents, help="who was seen or heard in a time range (--since, --until)")
    questions.add_parser("people", parents=parents, help="everyone memory holds")
    for name, text in (("last-seen", "when and where a person was last seen and heard"), ("said", "what a person said"),
                       ("with", "who a person was with")):  # fmt: skip
        q = questions.add_parser(name, parents=parents, help=text)
        q.add_argument("person", metavar="NAME", help="a label, a tag like <face_3> or <character_2>, or a node id")
    clip = questions.add_parser("clip", parents=parents, help="a clip's memories, people and speech")
    clip.add_argument("stream_name", metavar="STREAM")
    clip.add_argument("index", type=int, metavar="N", help="clip number (stream seconds / memory.interval_seconds)")
    search = questions.add_parser("search", parents=parents, help="memories and transcripts by words and meaning")
    search.add_argument("text", nargs="+", metavar="TEXT")
