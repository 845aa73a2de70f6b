"""Forgetting runs on both stores: each test on a copy of support.asked's memory in an SQLite file
and in a PostgreSQL database."""

from __future__ import annotations

import pytest
from support.asked import Built, FaceBank, build_on
from support.postgres import STORES


@pytest.fixture(scope="module", params=STORES)
def original(request: pytest.FixtureRequest, bank: FaceBank) -> Built:
    return build_on(request.param, request, bank)
