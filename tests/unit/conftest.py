"""Fixtures shared by the unit tests (pytest loads this file; never import it)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.support.loopback import LoopbackServer, documents_handler


@pytest.fixture
def dashboard() -> Iterator[tuple[str, dict[str, Any]]]:
    """A Ray dashboard double on loopback: `(url, documents)`, JSON by path ("" -> 404).

    A test sets `documents["/api/serve/applications"] = {...}` (paths without the
    trailing slash); any other path answers 404.
    """
    documents: dict[str, Any] = {}
    with LoopbackServer(documents_handler(documents)) as server:
        yield server.url, documents
