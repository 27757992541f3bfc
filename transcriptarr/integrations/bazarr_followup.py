"""After a job queued from Bazarr's wanted list wrote its subtitle: make Bazarr see it (BAZARR_AFTER_WRITE).

- `scan-disk` (default): Bazarr rescans the series or movie and finds `<video stem>.<lang>.srt` by itself.
  It runs synchronously inside Bazarr and can take minutes for a big series (BAZARR_TIMEOUT_SECONDS).
- `upload`: the written file is handed to Bazarr, which saves it next to the video under its own name
  and records it in its history as an upload (it never tries to "upgrade" uploads).
  Caution: Bazarr marks an upload as hearing-impaired (saved as `.en.hi.srt`, which then does not count
  for a wanted plain `en`) when its text has bracketed or music-note cues like `[Music]` or `♪ ... ♪`;
  such uploads are logged with a warning.
- `none`: Bazarr is not told; it finds the file at its own next disk scan.

Bazarr's variants `pb` and `ea` are always uploaded (unless `none`): only an upload gets the regional file
name (`pt-BR`) under which Bazarr counts them (see bazarr_sync.py). Our own `.pt.srt` stays beside it.
"""

from __future__ import annotations

import asyncio
import re
from pathlib import Path
from typing import Any

import structlog

from transcriptarr.db.models import Job, JobState
from transcriptarr.integrations.bazarr_api import UPLOAD_ONLY, BazarrClient, BazarrError, Kind
from transcriptarr.integrations.followups import FollowUp, FollowUpError
from transcriptarr.settings import Settings

log = structlog.get_logger(__name__)

# What makes Bazarr call an uploaded subtitle hearing-impaired: [bracketed] cues or music notes.
_HI_LOOKING = re.compile(r"\[[^\]\n]+\]|[♪♫]")


class BazarrNotify:
    """Tell Bazarr about a subtitle written for its wanted list: a disk scan, or an upload of the file."""

    name = "bazarr"

    def __init__(self, url: str, api_key: str, *, mode: str = "scan-disk", timeout_seconds: float = 300.0) -> None:
        if mode not in ("scan-disk", "upload"):
            raise ValueError(f"unknown BAZARR_AFTER_WRITE {mode!r}; use scan-disk, upload or none")
        self.url = url
        self.api_key = api_key
        self.mode = mode
        self.timeout_seconds = timeout_seconds

    def wants(self, job: Job) -> bool:
        """Only a completed job that wrote a file (not one that skipped, saying why) for Bazarr's wanted list."""
        return job.state == JobState.COMPLETED and bool(job.result_path) and _bazarr(job) is not None

    async def __call__(self, job: Job) -> None:
        wanted = _bazarr(job)
        assert wanted is not None and job.result_path is not None
        kind: Kind = "episode" if wanted.get("kind") == "episode" else "movie"
        language = str(wanted.get("language") or job.target_language or "")
        upload = self.mode == "upload" or language in UPLOAD_ONLY
        try:
            async with BazarrClient(self.url, self.api_key, timeout=self.timeout_seconds) as bazarr:
                if upload:
                    await self._upload(bazarr, job, kind, wanted, language)
                else:
                    await self._scan(bazarr, job, kind, wanted)
        except BazarrError as exc:
            raise FollowUpError(str(exc), retry=exc.retry) from None

    async def _scan(self, bazarr: BazarrClient, job: Job, kind: Kind, wanted: dict[str, Any]) -> None:
        target = _id(wanted, "seriesid" if kind == "episode" else "radarrid", job)
        await bazarr.scan_disk(kind, target)
        log.info(
            "bazarr_rescanned",
            job_id=job.id,
            subtitle=job.result_path,
            kind=kind,
            title=wanted.get("title"),
            **({"seriesid": target} if kind == "episode" else {"radarrid": target}),
        )

    async def _upload(self, bazarr: BazarrClient, job: Job, kind: Kind, wanted: dict[str, Any], language: str) -> None:
        assert job.result_path is not None
        subtitle = Path(job.result_path)
        if not await asyncio.to_thread(subtitle.is_file):
            raise FollowUpError(f"cannot upload {subtitle} to Bazarr: the file is gone", retry=False)
        item_id = _id(wanted, "episodeid" if kind == "episode" else "radarrid", job)
        series_id = _id(wanted, "seriesid", job) if kind == "episode" else None
        text = await asyncio.to_thread(subtitle.read_text, encoding="utf-8", errors="replace")
        if _HI_LOOKING.search(text):
            log.warning(
                "bazarr_upload_may_count_as_hi",
                job_id=job.id,
                subtitle=str(subtitle),
                reason="the text has [bracketed] or ♪ cues: Bazarr may save it as hearing-impaired (.hi), "
                "which does not count for a wanted plain subtitle",
            )
        await bazarr.upload(
            kind,
            item_id=item_id,
            series_id=series_id,
            language=language,
            subtitle=subtitle,
            forced=bool(wanted.get("forced")),
            hi=bool(wanted.get("hi")),
        )
        log.info(
            "bazarr_uploaded",
            job_id=job.id,
            subtitle=str(subtitle),
            kind=kind,
            language=language,
            title=wanted.get("title"),
        )


def _bazarr(job: Job) -> dict[str, Any] | None:
    wanted = (job.details or {}).get("bazarr")
    return wanted if isinstance(wanted, dict) else None


def _id(wanted: dict[str, Any], name: str, job: Job) -> int:
    value = wanted.get(name)
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    raise FollowUpError(f"job {job.id} has no Bazarr {name} in its details; cannot tell Bazarr", retry=False)


def bazarr_followup_from_settings(settings: Settings) -> FollowUp | None:
    """The after-write follow-up when BAZARR_URL and BAZARR_API_KEY are set and BAZARR_AFTER_WRITE is not none.

    Built on every node that runs workers (not only where the sync runs): the node that wrote the file tells Bazarr.
    """
    key = settings.bazarr_api_key.get_secret_value() if settings.bazarr_api_key is not None else ""
    if not settings.bazarr_url or not key or settings.bazarr_after_write == "none":
        return None
    return BazarrNotify(
        settings.bazarr_url, key, mode=settings.bazarr_after_write, timeout_seconds=settings.bazarr_timeout_seconds
    )
