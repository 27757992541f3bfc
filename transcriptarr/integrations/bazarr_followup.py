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
from transcriptarr.integrations.followups import Attempt, FollowUp, FollowUpError, Plan
from transcriptarr.integrations.notify import describe_url
from transcriptarr.settings import Settings

log = structlog.get_logger(__name__)

# What makes Bazarr call an uploaded subtitle hearing-impaired: [bracketed] cues or music notes.
_HI_LOOKING = re.compile(r"\[[^\]\n]+\]|[♪♫]")


class BazarrNotify:
    """Tell Bazarr about a subtitle written for its wanted list: a disk scan, or an upload of the file.

    Both are harmless to repeat (a follow-up is done at least once): a scan finds what is there; an upload
    tried again first asks Bazarr whether it still wants that language, and is not sent when it does not.
    """

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

    def plan(self, job: Job) -> Plan:
        """Scan or upload, decided now; the ids are checked when it is done (a bad one is a reason to give up)."""
        wanted = _bazarr(job) or {}
        language = str(wanted.get("language") or job.target_language or "")
        upload = self.mode == "upload" or language in UPLOAD_ONLY
        kind: Kind = "episode" if wanted.get("kind") == "episode" else "movie"
        data = {"kind": kind, "upload": upload, "language": language, "subtitle": job.result_path, "wanted": wanted}
        return Plan(describe_url(self.url), data)

    async def perform(self, data: dict[str, Any], attempt: Attempt) -> None:
        wanted = data.get("wanted")
        subtitle = data.get("subtitle")
        if not isinstance(wanted, dict) or not isinstance(subtitle, str):
            raise FollowUpError(f"the stored Bazarr call of job {attempt.job_id} names no item or file", retry=False)
        kind: Kind = "episode" if data.get("kind") == "episode" else "movie"
        language = str(data.get("language") or "")
        try:
            async with BazarrClient(self.url, self.api_key, timeout=self.timeout_seconds) as bazarr:
                if data.get("upload"):
                    await self._upload(bazarr, attempt, kind, wanted, language, Path(subtitle))
                else:
                    await self._scan(bazarr, attempt, kind, wanted, subtitle)
        except BazarrError as exc:
            raise FollowUpError(str(exc), retry=exc.retry) from None

    async def _scan(
        self, bazarr: BazarrClient, attempt: Attempt, kind: Kind, wanted: dict[str, Any], subtitle: str
    ) -> None:
        target = _id(wanted, "seriesid" if kind == "episode" else "radarrid", attempt.job_id)
        await bazarr.scan_disk(kind, target)
        log.info(
            "bazarr_rescanned",
            job_id=attempt.job_id,
            subtitle=subtitle,
            kind=kind,
            title=wanted.get("title"),
            **({"seriesid": target} if kind == "episode" else {"radarrid": target}),
        )

    async def _upload(
        self, bazarr: BazarrClient, attempt: Attempt, kind: Kind, wanted: dict[str, Any], language: str, subtitle: Path
    ) -> None:
        if not await asyncio.to_thread(subtitle.is_file):
            raise FollowUpError(f"cannot upload {subtitle} to Bazarr: the file is gone", retry=False)
        item_id = _id(wanted, "episodeid" if kind == "episode" else "radarrid", attempt.job_id)
        series_id = _id(wanted, "seriesid", attempt.job_id) if kind == "episode" else None
        forced, hi = bool(wanted.get("forced")), bool(wanted.get("hi"))
        if attempt.number > 1 and not await _still_wanted(bazarr, kind, item_id, language, forced=forced, hi=hi):
            # An earlier try may have got through before its end was recorded: Bazarr has it.
            log.info(
                "bazarr_upload_not_needed", job_id=attempt.job_id, subtitle=str(subtitle), kind=kind, language=language
            )
            return
        text = await asyncio.to_thread(subtitle.read_text, encoding="utf-8", errors="replace")
        if _HI_LOOKING.search(text):
            log.warning(
                "bazarr_upload_may_count_as_hi",
                job_id=attempt.job_id,
                subtitle=str(subtitle),
                reason="the text has [bracketed] or ♪ cues: Bazarr may save it as hearing-impaired (.hi), "
                "which does not count for a wanted plain subtitle",
            )
        await bazarr.upload(
            kind, item_id=item_id, series_id=series_id, language=language, subtitle=subtitle, forced=forced, hi=hi
        )
        log.info(
            "bazarr_uploaded",
            job_id=attempt.job_id,
            subtitle=str(subtitle),
            kind=kind,
            language=language,
            title=wanted.get("title"),
        )


async def _still_wanted(
    bazarr: BazarrClient, kind: Kind, item_id: int, language: str, *, forced: bool, hi: bool
) -> bool:
    """Whether Bazarr still lists this language as missing for the item (an unknown item: let the upload say so)."""
    found = await (bazarr.episodes([item_id]) if kind == "episode" else bazarr.movies([item_id]))
    if not found:
        return True
    return any(
        entry.code2 == language and entry.forced == forced and entry.hi == hi
        for item in found
        for entry in item.missing
    )


def _bazarr(job: Job) -> dict[str, Any] | None:
    wanted = (job.details or {}).get("bazarr")
    return wanted if isinstance(wanted, dict) else None


def _id(wanted: dict[str, Any], name: str, job_id: int) -> int:
    value = wanted.get(name)
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    raise FollowUpError(f"job {job_id} has no Bazarr {name} in its details; cannot tell Bazarr", retry=False)


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
