"""The queries only read: one memory (support.asked) serves a whole module."""

from __future__ import annotations

import pytest

from support.asked import Built


@pytest.fixture(scope="module")
def built(original: Built) -> Built:
    return original
