"""Fixtures of the HTTP tests: Bazarr-style PCM of real speech, and helpers to inspect the queue."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.acceptance.engine_harness import SENTENCES
from tests.api.live import LiveService, to_pcm
from tests.media_factory import concat_audio, fixture_path, speak
from transcriptarr.db.models import Job, Source
from transcriptarr.queue.keys import upload_key


@pytest.fixture(scope="session")
def jfk_pcm(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    """11 s of real speech ("... my fellow Americans ..."), as Bazarr uploads it."""
    return to_pcm(fixture_path("jfk.flac"), tmp_path_factory.mktemp("jfk") / "jfk.pcm")


@pytest.fixture(scope="session")
def long_wav(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """About a minute of speech (JFK, then distinct synthetic sentences): several seconds to transcribe."""
    folder = tmp_path_factory.mktemp("long")
    jfk = fixture_path("jfk.flac")
    parts = [jfk] + [speak(text, folder / f"s{i}.wav") for i, text in enumerate(SENTENCES)]
    return concat_audio(folder / "long.wav", parts)


@pytest.fixture(scope="session")
def long_pcm(long_wav: Path) -> bytes:
    return to_pcm(long_wav, long_wav.with_suffix(".pcm"))


def unique(pcm: bytes, salt: int) -> bytes:
    """The same speech with `salt` extra silent samples: another sha256, so another job."""
    return pcm + b"\x00\x00" * salt


def content_key(audio: bytes, task: str = "transcribe", language: str | None = "en", video: str | None = None) -> str:
    return upload_key(hashlib.sha256(audio).hexdigest(), task, language, video)


def bazarr_jobs(service: LiveService, key: str | None = None) -> list[Job]:
    async def work(parts: object) -> list[Job]:
        jobs = await service.parts.queue.list_jobs(sources=[Source.BAZARR], limit=1000)
        return [job for job in jobs if key is None or job.content_key == key]

    return service.call(work)


def spool_files(service: LiveService) -> list[Path]:
    return sorted(service.config.spool_dir.glob("*"))


@pytest.fixture
def library(tmp_path: Path) -> Iterator[Path]:
    folder = tmp_path / "library"
    folder.mkdir()
    yield folder
