"""The status page rendered by real headless Chromium, showing a running job with its progress bar.

The running job belongs to a worker of another node (claimed and reported
through the queue, as that node would), so its progress is known exactly.
"""

from __future__ import annotations

import re
import shutil
import struct
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.acceptance.engine_harness import engine_settings
from tests.api.live import LiveService
from tests.conftest import unavailable
from transcriptarr.db.models import Source, Stage
from transcriptarr.queue.jobqueue import NewJob
from transcriptarr.service import Components

WORKER = "node-b/cuda:0/0"


def chromium() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        if found := shutil.which(name):
            return found
    unavailable("Chromium is not installed (Debian: apt-get install -y chromium)")
    raise AssertionError("unreachable")


def headless(browser: str, profile: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            browser,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
            f"--user-data-dir={profile}",
            "--window-size=1200,900",
            *args,
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.fixture
def running_job(tmp_path: Path) -> Iterator[tuple[LiveService, int]]:
    library = tmp_path / "library"
    library.mkdir()
    media = library / "Big Buck Bunny (2008).mkv"
    media.write_bytes(b"media")
    waiting = library / "Sintel (2010).mkv"
    waiting.write_bytes(b"media")
    settings = engine_settings(tmp_path, library_paths=str(library), transcriptarr_mode="standalone,provider")

    async def start_elsewhere(parts: Components) -> int:
        running = await parts.queue.enqueue(NewJob(source=Source.MANUAL, media_path=str(media), target_language="en"))
        await parts.queue.enqueue(NewJob(source=Source.SCAN, media_path=str(waiting), target_language="en"))
        await parts.workers.register_node("node-b", "workers", ("cuda:0",))
        await parts.workers.register(WORKER, "node-b", "cuda:0")
        [claimed] = await parts.queue.claim(WORKER, "node-b")
        assert claimed.id == running.job.id
        await parts.queue.report(claimed.id, WORKER, progress=42.5, stage=Stage.TRANSCRIBING, media_duration=5400.0)
        await parts.workers.beat(WORKER, "busy", claimed.id)
        return claimed.id

    with LiveService(settings, workers=False, snapshot_ttl_seconds=0) as live:
        yield live, live.call(start_elsewhere)


def png_size(path: Path) -> tuple[int, int]:
    header = path.read_bytes()[:24]
    assert header[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    width, height = struct.unpack(">II", header[16:24])
    return int(width), int(height)


def test_status_page_shows_the_running_job_in_chromium(running_job: tuple[LiveService, int], tmp_path: Path) -> None:
    live, job_id = running_job
    browser = chromium()

    dom = headless(browser, tmp_path / "profile-dom", "--dump-dom", f"{live.url}/")
    assert dom.returncode == 0, dom.stderr[-2000:]
    html = dom.stdout
    row = re.search(rf'<tr class="job-row" id="job-{job_id}" data-state="processing">(.*?)</tr>', html, re.S)
    assert row, html[:3000]
    assert "Big Buck Bunny (2008).mkv" in row.group(1)
    assert "transcribing" in row.group(1)
    assert f'id="job-progress-{job_id}"' in row.group(1) and 'value="42.5"' in row.group(1)
    assert 'style="width:42.5%"' in row.group(1)
    assert WORKER in html and "Sintel (2010).mkv" in html  # the worker and the queue
    nodes = re.search(r'<table id="nodes">(.*?)</table>', html, re.S)
    assert nodes and "node-b" in nodes.group(1) and "cuda:0" in nodes.group(1) and "stale" not in nodes.group(1)

    shot = tmp_path / "status.png"
    taken = headless(browser, tmp_path / "profile-shot", f"--screenshot={shot}", f"{live.url}/")
    assert taken.returncode == 0 and shot.is_file(), taken.stderr[-2000:]
    assert png_size(shot) == (1200, 900)
    # A blank or error page compresses to a few KB; text, tables and the bar do not.
    assert shot.stat().st_size > 20_000
    shutil.copy(shot, live.settings.data_dir / "status.png")  # kept with the test's files for a look
