"""One ffprobe per file however many webhooks arrive for it (issue 16: 500 webhooks made 500 ffprobes).

A webhook for a file the library has not indexed yet decides it with a probe of its own
(`Library.explain`); the prober runs one ffprobe for all the calls about one file
(path + size + mtime) and answers later ones from memory until the file changes.
"""

from __future__ import annotations

import asyncio
import os
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import aiohttp
import pytest

from tests.api.live import LiveService
from tests.integrations.test_webhooks import KEY, jellyfin_all_properties, jobs_for, library_settings, place
from tests.media_factory import make_silence, make_video
from transcriptarr.library.prober import Prober, probe_file
from transcriptarr.media.probe import MediaInfo, ProbeError

WEBHOOKS = 200


@pytest.fixture(scope="module")
def movie(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Its own copy, not conftest's: a test here changes the file's mtime."""
    base = tmp_path_factory.mktemp("probe-media")
    return make_video(base / "movie.mkv", [(make_silence(base / "silence.wav", 2.0), "eng", True)])


class GatedProbe:
    """The real ffprobe, counted, started only once `gate` opens: every caller is waiting by then."""

    def __init__(self) -> None:
        self.gate = asyncio.Event()
        self.runs: list[Path] = []

    async def __call__(self, path: Path) -> MediaInfo:
        self.runs.append(path)
        await self.gate.wait()
        return await probe_file(path)


async def until(check: Callable[[], bool], what: str, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        await asyncio.sleep(0.01)


async def test_concurrent_calls_for_one_file_share_one_probe(movie: Path) -> None:
    probe = GatedProbe()
    prober = Prober(4, probe)
    calls = [asyncio.ensure_future(prober.probe(str(movie))) for _ in range(WEBHOOKS)]
    await until(lambda: len(probe.runs) == 1, "the first probe to start")
    probe.gate.set()
    results = await asyncio.gather(*calls)
    assert len(probe.runs) == 1 and prober.count == 1
    assert all(isinstance(result, MediaInfo) and result == results[0] for result in results)

    assert await prober.probe(str(movie)) == results[0] and prober.count == 1, "unchanged: answered from memory"
    later = time.time() + 5
    os.utime(movie, (later, later))
    assert isinstance(await prober.probe(str(movie)), MediaInfo) and prober.count == 2, "changed: probed again"


async def test_a_caller_that_gives_up_does_not_cancel_the_others(movie: Path) -> None:
    probe = GatedProbe()
    prober = Prober(4, probe)
    first, second = (asyncio.ensure_future(prober.probe(str(movie))) for _ in range(2))
    await until(lambda: len(probe.runs) == 1, "the probe to start")
    first.cancel()
    probe.gate.set()
    assert isinstance(await second, MediaInfo) and len(probe.runs) == 1


async def test_errors_are_not_remembered(tmp_path: Path) -> None:
    broken = tmp_path / "broken.mkv"
    broken.write_bytes(b"not media\n" * 50)
    prober = Prober(2)
    for attempt in (1, 2):
        result = await prober.probe(str(broken))
        assert isinstance(result, ProbeError) and result.kind == "not_media"
        assert prober.count == attempt, "a file that could not be probed is tried again"
    missing = await prober.probe(str(tmp_path / "gone.mkv"))
    assert isinstance(missing, ProbeError) and missing.kind == "missing"


# --------------------------------------------------------------------------- over HTTP


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveService]:
    with LiveService(library_settings(tmp_path_factory.mktemp("webhook-probes")), workers=False) as live:
        yield live


async def post_all(url: str, payload: dict[str, object], count: int) -> list[tuple[int, dict[str, object]]]:
    # A pool of connections, as a busy media server's webhook plugin would use; every post in flight at once.
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=32)) as session:

        async def one() -> tuple[int, dict[str, object]]:
            async with session.post(url, json=payload, headers={"X-Api-Key": KEY}) as response:
                return response.status, await response.json()

        return await asyncio.gather(*(one() for _ in range(count)))


def test_200_webhooks_for_a_new_file_run_one_ffprobe(service: LiveService, movie: Path) -> None:
    library = service.settings.library_paths[0]
    local = place(movie, library, "movies/Crowd (2024)/Crowd (2024).mkv")
    library_of_webhooks = service.parts.library
    assert library_of_webhooks is not None
    before = library_of_webhooks.probes
    payload = jellyfin_all_properties(
        "ItemAdded", str(uuid.uuid4()), "Movie", "Crowd", path="/data/movies/Crowd (2024)/Crowd (2024).mkv"
    )

    answers = asyncio.run(post_all(f"{service.url}/webhooks/jellyfin", payload, WEBHOOKS))

    assert [status for status, _ in answers] == [202] * WEBHOOKS, answers[:3]
    assert sum(1 for _, body in answers if body["queued"]) == 1, "one webhook queued it, the others found the job"
    [job] = jobs_for(service, local)
    assert {body["job_id"] for _, body in answers} == {job.id}
    assert library_of_webhooks.probes - before == 1, "one ffprobe for 200 webhooks"
