"""Fixtures of the fault tests."""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import unavailable
from tests.faults.frozen_postgres import thaw
from tests.servers import RunningServer, ServerError, ensure_installed, start_postgres


@pytest.fixture
def own_postgres() -> Iterator[RunningServer]:
    """A PostgreSQL server of this test's own: the session's shared one is not ours to freeze."""
    problem = ensure_installed("postgresql")
    if problem:
        unavailable(f"postgresql server cannot run here: {problem}")
    with tempfile.TemporaryDirectory(prefix="transcriptarr-own-pg-") as base:
        try:
            server = start_postgres(Path(base))
        except ServerError as exc:
            unavailable(f"postgresql server did not start: {exc}")
            raise
        try:
            yield server
        finally:
            thaw(server)
            server.stop()
