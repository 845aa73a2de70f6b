"""The queries only read: one memory (support.asked) serves a whole module, on each store."""

from __future__ import annotations

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
