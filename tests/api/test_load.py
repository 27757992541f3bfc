"""Load: 50 concurrent Bazarr uploads of real speech, then 200 concurrent status clients while transcribing.

`transcriptarr run` in a child process (provider mode, one worker, the bundled
tiny.en) on 127.0.0.1. The uploads are 10 spoken sentences (espeak-ng), each
sent 5 times at once, byte for byte as Bazarr's `requests` builds them, while a
poller reads the status routes. Every upload must be answered 200 with strict
SRT holding its sentence's key word, none may fail to connect or be cut off,
and each sentence must be transcribed once (one job per audio+task+language in
the database). Then 200 clients at once read /api/status, /status and /health
while the worker is still transcribing: all 200, within a sane bound.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import pytest
import requests
import srt

from tests.acceptance.engine_harness import normalise
from tests.api.live import BAZARR_HEADERS, to_pcm
from tests.api.test_fuzz_heavy import ServiceProcess, bazarr_jobs
from tests.media_factory import speak
from transcriptarr.db.models import JobState

pytestmark = pytest.mark.slow

KEY = "load-key"
COPIES = 5
STATUS_CLIENTS = 200
# Sentences whose key word tiny.en hears at temperature 0 with QUALITY=fast (espeak-ng's voice). The
# service below decodes with that preset: temperature fallback would make the words differ between runs.
CLIPS = {
    "The cat sat on the mat.": "cat",
    "Open the window please.": "window",
    "I like green apples.": "apples",
    "Bring a warm jacket.": "jacket",
    "The music is very loud.": "music",
    "We walked to the river.": "river",
    "Turn off the kitchen light.": "kitchen",
    "Seven yellow bananas.": "bananas",
    "The doctor is busy today.": "doctor",
    "Hello world.": "world",
}
ASR = {"task": "transcribe", "language": "en", "output": "srt", "encode": "false"}
# Generous: a shared 2-core machine transcribes the ten sentences one after the other meanwhile.
STATUS_BOUND_SECONDS = 20.0


@pytest.fixture(scope="module")
def speech(tmp_path_factory: pytest.TempPathFactory) -> dict[str, bytes]:
    """Each sentence as Bazarr uploads it: raw s16le 16 kHz mono PCM."""
    folder = tmp_path_factory.mktemp("load-speech")
    return {text: to_pcm(speak(text, folder / f"{n}.wav"), folder / f"{n}.pcm") for n, text in enumerate(CLIPS)}


@pytest.fixture
def service(tmp_path: Path) -> Iterator[ServiceProcess]:
    with ServiceProcess(
        tmp_path,
        TRANSCRIPTARR_MODE="provider",
        QUALITY="fast",
        API_KEY=KEY,
        WORKERS="1",
        PROVIDER_KEEPALIVE_SECONDS="1",
        LOG_LEVEL="warning",
        # Its 200 "clients" all come from 127.0.0.1: about 650 connections at once from one address.
        HTTP_MAX_CONNECTIONS_PER_CLIENT="1024",
    ) as running:
        yield running


def bazarr_request(url: str, audio: bytes) -> tuple[str, bytes, dict[str, str]]:
    """(url, body, headers) exactly as Bazarr's provider makes them with `requests`."""
    prepared = requests.Request(
        "POST", f"{url}/asr", params=ASR, files={"audio_file": audio}, headers=BAZARR_HEADERS
    ).prepare()
    assert prepared.url is not None and isinstance(prepared.body, bytes)
    headers = {name: str(value) for name, value in prepared.headers.items() if name != "Content-Length"}
    return prepared.url, prepared.body, headers


async def upload(session: aiohttp.ClientSession, url: str, audio: bytes) -> tuple[int, str]:
    target, body, headers = bazarr_request(url, audio)
    async with session.post(target, data=body, headers=headers) as response:
        return response.status, await response.text()


async def get_status(session: aiohttp.ClientSession, url: str) -> tuple[int, float]:
    """GET one status route; (status, seconds)."""
    started = time.monotonic()
    async with session.get(url, headers={"X-Api-Key": KEY}) as response:
        await response.read()
        return response.status, time.monotonic() - started


async def poll_status(session: aiohttp.ClientSession, base: str, done: asyncio.Event, seen: list[int]) -> None:
    """A status page open in a browser: /status, /api/status and /health every 0.2 s."""
    while not done.is_set():
        for route in ("/status", "/api/status", "/health"):
            status, _ = await get_status(session, f"{base}{route}")
            seen.append(status)
        await asyncio.sleep(0.2)  # the poller's pace, not a synchronisation


async def transcribing(session: aiohttp.ClientSession, base: str) -> bool:
    """Is a Bazarr job running on the worker now?"""
    async with session.get(
        f"{base}/api/jobs", params={"state": "processing", "source": "bazarr"}, headers={"X-Api-Key": KEY}
    ) as response:
        return bool((await response.json())["jobs"])


async def wait_until_transcribing(session: aiohttp.ClientSession, base: str, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if await transcribing(session, base):
            return True
        await asyncio.sleep(0.05)
    return False


async def status_burst(session: aiohttp.ClientSession, base: str) -> list[tuple[int, float]]:
    """STATUS_CLIENTS clients at once, each reading the three status routes at once."""
    routes = ("/api/status", "/status", "/health")
    return await asyncio.gather(
        *(get_status(session, f"{base}{route}") for _ in range(STATUS_CLIENTS) for route in routes)
    )


async def test_50_concurrent_uploads_and_200_status_clients_are_all_answered(
    service: ServiceProcess, speech: dict[str, bytes]
) -> None:
    uploads = [text for text in CLIPS for _ in range(COPIES)]
    random.Random(7).shuffle(uploads)  # copies of one sentence arrive among the others
    connector = aiohttp.TCPConnector(limit=0, force_close=True)  # one connection per request, like Bazarr
    timeout = aiohttp.ClientTimeout(total=110, sock_connect=5)
    started = time.monotonic()
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        done, polled = asyncio.Event(), list[int]()
        poller = asyncio.create_task(poll_status(session, service.url, done, polled))
        sending = asyncio.gather(*(upload(session, service.url, speech[text]) for text in uploads))

        was_transcribing = await wait_until_transcribing(session, service.url, 60)
        burst_started = time.monotonic()
        burst = await status_burst(session, service.url)
        burst_seconds = time.monotonic() - burst_started
        still_transcribing = await transcribing(session, service.url)

        answers = await sending
        done.set()
        await poller
    total = time.monotonic() - started

    for text, (status, body) in zip(uploads, answers, strict=True):
        assert status == 200, (text, status, body[:300])
        cues = list(srt.parse(body, ignore_errors=False))
        words = normalise(" ".join(cue.content for cue in cues)).split()
        assert CLIPS[text] in words, (text, words)
    # Copies of one sentence got the same subtitle.
    by_text: dict[str, set[str]] = {}
    for text, (_, body) in zip(uploads, answers, strict=True):
        by_text.setdefault(text, set()).add(body)
    assert all(len(bodies) == 1 for bodies in by_text.values()), by_text

    jobs = await bazarr_jobs(service)
    assert len(jobs) == len(CLIPS), [(job.id, job.content_key) for job in jobs]
    assert len({job.content_key for job in jobs}) == len(CLIPS)
    assert all(job.state == JobState.COMPLETED for job in jobs)

    assert polled and set(polled) == {200}, sorted(set(polled))
    assert was_transcribing, "no job was seen running: the burst did not meet a busy worker"
    latencies = sorted(seconds for _, seconds in burst)
    assert [status for status, _ in burst] == [200] * len(burst)
    assert latencies[-1] < STATUS_BOUND_SECONDS, latencies[-10:]
    p50, p95 = latencies[len(latencies) // 2], latencies[int(len(latencies) * 0.95)]
    print(
        f"load: {len(uploads)} uploads ({len(CLIPS)} distinct) answered in {total:.1f} s; "
        f"{len(burst)} status requests from {STATUS_CLIENTS} clients in {burst_seconds:.2f} s "
        f"(p50 {p50 * 1000:.0f} ms, p95 {p95 * 1000:.0f} ms, max {latencies[-1] * 1000:.0f} ms), "
        f"worker still transcribing after the burst: {still_transcribing}; {len(polled)} polls all 200"
    )
