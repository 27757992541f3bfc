"""Soak: 200 consecutive real transcriptions in one process, then the idle model unloads and its memory goes back.

A real service (SQLite queue, worker pool, HTTP) runs in a thread of this
process (tests/api/live.py); 200 Bazarr requests, one after the other, each
upload a short spoken clip that the bundled tiny.en transcribes (QUALITY=fast).
The process's resident memory after a warm-up of 20 jobs and after the last
one may differ by less than 50 MB. Then, with nothing to do, the model unloads
after MODEL_IDLE_UNLOAD_SECONDS and the memory it held is returned to the OS
(glibc keeps freed memory until `malloc_trim`: transcriptarr/workers/memory.py).
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
import srt

from tests.acceptance.engine_harness import engine_settings, normalise
from tests.api.live import LiveService, bazarr_post, to_pcm
from tests.media_factory import speak

pytestmark = pytest.mark.slow

JOBS = 200
WARM_UP_JOBS = 20
MAX_GROWTH_MB = 50.0
IDLE_UNLOAD_SECONDS = 3.0
# Short sentences and a word tiny.en always gets right in each.
CLIPS = {"Hello world.": "world", "Seven yellow bananas.": "bananas", "The music is very loud.": "music"}
ASR = {"task": "transcribe", "language": "en", "output": "srt", "encode": "false"}


def rss_mb() -> float:
    """Resident memory of this process (second field of /proc/self/statm, in pages)."""
    pages = int(Path("/proc/self/statm").read_text().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE") / (1024 * 1024)


@pytest.fixture(scope="module")
def clips(tmp_path_factory: pytest.TempPathFactory) -> list[tuple[bytes, str]]:
    folder = tmp_path_factory.mktemp("soak-speech")
    return [
        (to_pcm(speak(text, folder / f"{n}.wav"), folder / f"{n}.pcm"), word)
        for n, (text, word) in enumerate(CLIPS.items())
    ]


@pytest.fixture
def service(tmp_path: Path) -> Iterator[LiveService]:
    settings = engine_settings(
        tmp_path, transcriptarr_mode="provider", quality="fast", model_idle_unload_seconds=IDLE_UNLOAD_SECONDS
    )
    with LiveService(settings, keepalive_seconds=5) as live:
        yield live


def model_loaded(service: LiveService) -> bool:
    async def loaded(parts: object) -> bool:
        return bool(service.parts.models.loaded())

    return service.call(loaded)


def test_200_consecutive_transcriptions_hold_memory_steady_and_idle_unload_returns_it(
    service: LiveService, clips: list[tuple[bytes, str]]
) -> None:
    started = time.monotonic()
    after_warm_up = 0.0
    with requests.Session() as session:
        for n in range(JOBS):
            audio, word = clips[n % len(clips)]
            # Silent samples added: another sha256 each time, so each request is a new job, not a stored answer.
            response = bazarr_post(service.url, "asr", audio + b"\x00\x00" * (n + 1), ASR, session=session)
            assert response.status_code == 200, (n, response.text)
            words = normalise(" ".join(cue.content for cue in srt.parse(response.text, ignore_errors=False)))
            assert word in words.split(), (n, words)
            if n + 1 == WARM_UP_JOBS:
                after_warm_up = rss_mb()
    soak_seconds = time.monotonic() - started
    at_end = rss_mb()
    assert model_loaded(service)

    deadline = time.monotonic() + 60
    while model_loaded(service):
        assert time.monotonic() < deadline, "the idle model was not unloaded within 60 s"
        time.sleep(0.1)
    after_unload = rss_mb()

    print(
        f"soak: {JOBS} jobs in {soak_seconds:.1f} s; RSS {after_warm_up:.1f} MB after {WARM_UP_JOBS} jobs, "
        f"{at_end:.1f} MB after {JOBS} (growth {at_end - after_warm_up:+.1f} MB); "
        f"idle unload: {at_end:.1f} -> {after_unload:.1f} MB ({at_end - after_unload:.1f} MB returned)"
    )
    assert at_end - after_warm_up < MAX_GROWTH_MB
    # tiny.en (int8) holds about 70 MB while loaded; most of it must come back.
    assert at_end - after_unload > 40.0
