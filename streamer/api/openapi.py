"""The OpenAPI 3.1 description of the HTTP API, served at /api/openapi.json."""

from __future__ import annotations

from typing import Any

TIME = {"type": "string", "description": "unix seconds, ISO 8601 (2026-05-01T09:30, local time unless an offset is given), or -30m, -2h, -1d"}
PERSON = {
    "name": "person", "in": "path", "required": True, "schema": {"type": "string"},
    "description": "a label (case-insensitive), a tag (<face_3>, <voice_7>, <character_2>) or a node id",
}  # fmt: skip
ERROR = {"type": "object", "properties": {"error": {"type": "string"}}, "required": ["error"]}
PERSON_SCHEMA = {
    "type": "object",
    "description": "A character (a face tied to a voice) or a lone face or voice node.",
    "properties": {
        "tag": {"type": "string"}, "label": {"type": ["string", "null"]}, "character": {"type": ["integer", "null"]},
        "faces": {"type": "array", "items": {"type": "integer"}}, "voices": {"type": "array", "items": {"type": "integer"}},
    },
}  # fmt: skip


def _query(name: str, description: str, schema: dict[str, Any] | None = None, required: bool = False) -> dict[str, Any]:
    return {"name": name, "in": "query", "required": required, "description": description, "schema": schema or {"type": "string"}}


def _get(summary: str, params: list[dict[str, Any]], result: str, not_found: bool = False) -> dict[str, Any]:
    responses: dict[str, Any] = {
        "200": {"description": result, "content": {"application/json": {"schema": {}}}},
        "400": {"description": "a bad parameter", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}},
        "401": {"description": "the bearer token is missing or wrong"},
    }
    if not_found:
        responses["404"] = {"description": "no such person or clip", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}
    return {"get": {"summary": summary, "parameters": params, "responses": responses}}


def _post(summary: str, params: list[dict[str, Any]], body: dict[str, Any]) -> dict[str, Any]:
    return {"post": {
        "summary": summary + " Needs the token; emits the same events as the command line.", "parameters": params,
        "requestBody": {"required": True, "content": {"application/json": {"schema": {"type": "object", "properties": body, "required": list(body)}}}},
        "responses": {"200": {"description": "the node after the edit"}, "400": {"description": "a bad body or an edit memory refuses"},
                      "401": {"description": "the bearer token is missing or wrong"}, "403": {"description": "no token is set: edits are off"},
                      "404": {"description": "no such node"}},
    }}  # fmt: skip


def openapi() -> dict[str, Any]:
    node = {"name": "node", "in": "path", "required": True, "schema": {"type": "integer"}, "description": "face or voice node id"}
    since, until = _query("since", "from this time", TIME), _query("until", "up to this time (default now)", TIME)
    return {
        "openapi": "3.1.0",
        "info": {"title": "streamer memory API", "version": "1",
                 "description": "Ask the face and voice memory. Answers carry node and character ids, streams and unix times "
                                "(each with an ISO 8601 twin, *_iso). Embeddings are never served."},  # fmt: skip
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
            "schemas": {"Error": ERROR, "Person": PERSON_SCHEMA},
        },
        "security": [{"bearer": []}],
        "paths": {
            "/api/people": _get("Everyone memory holds.", [], "a list of people"),
            "/api/present": _get("Who is in each stream now.", [_query("stream", "only this stream")], "a list of presences"),
            "/api/seen": _get("Who was seen or heard in a time range, per person and stream.",
                              [{**since, "required": True}, until, _query("stream", "only this stream")], "a list of sightings"),  # fmt: skip
            "/api/people/{person}/last-seen": _get("When and where a person was last seen and heard, and for how long.", [PERSON],
                                                   "the last visit seen and the last visit heard", not_found=True),  # fmt: skip
            "/api/people/{person}/said": _get(
                "What a person said (transcripts with times), oldest first.",
                [PERSON, since, until, _query("limit", "the latest this many turns (1-1000, default 100)", {"type": "integer"})],
                "a list of utterances", not_found=True,
            ),
            "/api/people/{person}/together": _get("Who a person shared clips with, and how often they were on screen together.",
                                                  [PERSON, since, until], "a list of companions", not_found=True),  # fmt: skip
            "/api/clips/{stream}/{index}": _get(
                "A clip's episodic and semantic memories, people and speech.",
                [{"name": "stream", "in": "path", "required": True, "schema": {"type": "string"}},
                 {"name": "index", "in": "path", "required": True, "schema": {"type": "integer"}, "description": "stream seconds / interval"}],
                "the clip", not_found=True,
            ),  # fmt: skip
            "/api/search": _get(
                "Memories and transcripts matching by words or by meaning, best first.",
                [_query("q", "words or a question", required=True), _query("limit", "1-100, default 10", {"type": "integer"})],
                "a list of hits",
            ),
            "/api/nodes/{node}/label": _post("Name a face or voice node (and so its character).", [node], {"label": {"type": "string"}}),
            "/api/nodes/{node}/merge": _post("Merge another node into this one.", [node], {"other": {"type": "integer"}}),
            "/api/nodes/{node}/split": _post("Move tracks of a node to a new node.", [node],
                                             {"tracks": {"type": "array", "items": {"type": "integer"}}}),  # fmt: skip
            "/api/characters/link": _post("Tie a face to a voice by hand.", [], {"face": {"type": "integer"}, "voice": {"type": "integer"}}),
            "/api/characters/unlink": _post("Untie a face and a voice for good.", [], {"face": {"type": "integer"}, "voice": {"type": "integer"}}),
            "/api/forget": _post("Delete a person for good: crops, embeddings, sightings, speech and memories (node.forgotten).", [],
                                 {"target": {"type": "string", "description": "a node id, <face_3>, <voice_7> or <character_2>"}}),  # fmt: skip
        },
    }
