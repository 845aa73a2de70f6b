"""The queries only read: one memory (support.asked) serves a whole module, on each store."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from support.asked import Built, FaceBank, build_on
from support.postgres import STORES


@pytest.fixture(scope="module")
def built(original: Built) -> Built:
    return original


@pytest.fixture(scope="module", params=STORES)
def stored(request: pytest.FixtureRequest, bank: FaceBank) -> Built:
    """The same memory on each store: the questions that do not depend on SQLite's file run on both."""
    return request.getfixturevalue("original") if request.param == "sqlite" else build_on(request.param, request, bank)


@pytest.fixture(params=STORES)
def writable(request: pytest.FixtureRequest, original: Built, bank: FaceBank, tmp_path: Path) -> Built:
    """The same memory for a test that writes it: a copy of the module's file, or one built on PostgreSQL."""
    if request.param != "sqlite":
        return build_on(request.param, request, bank)
    db = tmp_path / "copy.db"
    with sqlite3.connect(original.db) as src, sqlite3.connect(db) as dst:
        src.backup(dst)
    return Built(db, *[getattr(original, f) for f in list(Built.__dataclass_fields__)[1:]])
