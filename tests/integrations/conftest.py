"""Shared by the integration tests: the small real video they copy into their libraries."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.media_factory import make_silence, make_video


@pytest.fixture(scope="session")
def movie(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny real video with an English audio track: the library's rules say it needs subtitles.

    Tests copy it (never change it): a test that changes the file makes its own."""
    base = tmp_path_factory.mktemp("integration-media")
    return make_video(base / "movie.mkv", [(make_silence(base / "silence.wav", 2.0), "eng", True)])
