"""/api/status's "next" (the status page's "next up") is the first jobs in the claim order, asked of the
database: with more queued than any page of jobs, the urgent old ones are still there."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import requests

from tests.acceptance.engine_harness import engine_settings
from tests.api.live import LiveService
from tests.queue.rows import insert_jobs, job_row
from transcriptarr.db.models import utcnow
from transcriptarr.service import Components

QUEUED = 700


def test_next_up_is_the_first_queued_jobs_in_claim_order(tmp_path: Path) -> None:
    start = utcnow().replace(microsecond=0) - timedelta(hours=1)
    # The oldest ids are the most urgent: a page of the newest jobs holds none of them.
    rows = [
        job_row(f"m{i}", priority=5 if i < 30 else 1, created_at=start + timedelta(seconds=i)) for i in range(QUEUED)
    ]
    settings = engine_settings(tmp_path, transcriptarr_mode="standalone,provider")
    with LiveService(settings, workers=False) as live:

        async def fill(parts: Components) -> list[int]:
            return await insert_jobs(parts.queue.db, rows)

        ids = live.call(fill)
        status = requests.get(f"{live.url}/api/status", timeout=30)
    assert status.status_code == 200, status.text
    shown = status.json()["next"]
    assert [job["id"] for job in shown] == ids[:20]
    assert {job["priority"] for job in shown} == {5}
    assert status.json()["queue"]["counts"]["queued"] == QUEUED
