"""Reading a model's answer leniently, and what the model is sent."""

from __future__ import annotations

import pytest

from streamer.captions.client import chat_url, endpoint_host
from streamer.captions.prompt import ClipContext, Memories, Turn, build_messages, parse_reply


@pytest.mark.parametrize(
    ("reply", "expected"),
    [
        ('{"episodic": ["<face_3> waves"], "semantic": ["<face_3> is the host"]}',
         Memories(["<face_3> waves"], ["<face_3> is the host"])),
        ('Sure! Here it is:\n```json\n{"Episodic": ["<voice_1> says hello", 7, ""], "semantic": "<voice_1> speaks English"}\n```',
         Memories(["<voice_1> says hello"], ["<voice_1> speaks English"])),
        ("Episodic:\n- <face_3> sits down\n2. <face_3> smiles\n\nSemantic memories:\n* <face_3> is a teacher\n---",
         Memories(["<face_3> sits down", "<face_3> smiles"], ["<face_3> is a teacher"])),
        ("<face_3> enters the room.", Memories(["<face_3> enters the room."], [])),
        ('{"broken": [1, 2]} then "<face_1> leaves"', Memories(['{"broken": [1, 2]} then "<face_1> leaves'], [])),
        ("", Memories([], [])),
    ],
)  # fmt: skip
def test_answers_in_json_or_lines_are_read(reply: str, expected: Memories) -> None:
    assert parse_reply(reply) == expected


def test_a_rambling_answer_is_bounded() -> None:
    got = parse_reply("\n".join(f"<face_1> does thing {i} " + "x" * 900 for i in range(100)))
    assert len(got.episodic) == 20 and all(len(line) == 500 for line in got.episodic)


def test_the_clip_is_described_with_tags_quotes_frames_and_crops() -> None:
    ctx = ClipContext("door", 2, 1_700_000_000.0, 1_700_000_030.0, [("<face_3>", b"crop"), ("<face_4>", None)], ["<voice_1>"],
                      [Turn(1.0, 2.5, "<voice_1>", " Hello there. "), Turn(3.0, 4.0, None, None)])  # fmt: skip
    system, user = build_messages(ctx, [b"f1", b"f2"], images=True)
    text = user["content"][0]["text"]
    assert "People seen: <face_3>, <face_4>." in text and "Voices heard: <voice_1>." in text
    assert '[1.0-2.5 s] <voice_1>: "Hello there."' in text and "an unknown voice: (not transcribed)" in text
    images = [p["image_url"]["url"] for p in user["content"] if p["type"] == "image_url"]
    assert images == ["data:image/jpeg;base64,ZjE=", "data:image/jpeg;base64,ZjI=", "data:image/jpeg;base64,Y3JvcA=="]
    assert {"type": "text", "text": "The face of <face_3>:"} in user["content"]
    _, plain = build_messages(ctx, [b"f1"], images=False)
    assert plain["content"] == text and "JSON" in system["content"]


@pytest.mark.parametrize(
    ("url", "chat", "host"),
    [
        ("http://127.0.0.1:8080", "http://127.0.0.1:8080/v1/chat/completions", "127.0.0.1:8080"),
        ("http://gpu:8000/v1/", "http://gpu:8000/v1/chat/completions", "gpu:8000"),
        ("https://user:pw@llm.example/v1/chat/completions", "https://user:pw@llm.example/v1/chat/completions", "llm.example"),
    ],
)
def test_endpoint_urls(url: str, chat: str, host: str) -> None:
    assert chat_url(url) == chat and endpoint_host(url) == host
