"""Files of jobs that ended: uploads in the spool and work files, removed at start-up and every few minutes.

Whose file is whose is the queue's answer (`JobQueue.file_owners`), asked after the
folders were listed, so a job that starts meanwhile finds its files kept:

- a work file `job-<id>...` (the extracted audio, and whatever else a job keeps
  beside it, files or folders) stays while job <id> is queued or processing;
- an upload `upload-<uuid>` stays while a queued or processing job reads it, and
  goes at once when only jobs that ended name it (e.g. cancelled while queued);
- an upload that no job names is still on its way: being received (`.part`, which
  intake writes to at least every `TOUCH_SECONDS` while data comes), received and
  about to be queued, or being read by /detect-language. It goes once untouched for
  `unclaimed_age` (an hour), as does a `.part` that a killed process left behind.

Upload names are matched by name, not path: another node may reach a shared spool
under another path.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import shutil
import stat
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import structlog

if TYPE_CHECKING:
    from transcriptarr.queue.jobqueue import JobQueue
    from transcriptarr.settings import Settings

log = structlog.get_logger(__name__)

UPLOAD_PREFIX = "upload-"
PARTIAL_SUFFIX = ".part"
WORK_FILE_PREFIX = "job-"
# An upload being received is written to at least this often while data comes.
TOUCH_SECONDS = 30.0
# job-<id>, job-<id>.pcm, job-<id>.pcm.part, job-<id>-anything: the digits are the job's id.
_WORK_NAME = re.compile(rf"{re.escape(WORK_FILE_PREFIX)}(\d+)(?:\D.*)?", re.DOTALL)


def work_file_path(work_dir: Path, job_id: int, suffix: str) -> Path:
    """Where job `job_id` keeps a work file: `job-<id><suffix>` (removed by the sweep once the job ended)."""
    return work_dir / f"{WORK_FILE_PREFIX}{job_id}{suffix}"


def work_file_job(name: str) -> int | None:
    """The id of the job a work-folder entry belongs to; None: not a work file of ours."""
    match = _WORK_NAME.fullmatch(name)
    return int(match.group(1)) if match else None


def remove_job_work_files(work_dir: Path, job_id: int) -> int:
    """Remove what job `job_id` kept in `work_dir` (its checkpoint, audio); blocking. How many entries went.

    Called once the job has ended for good; what cannot be removed now is left to the sweep."""
    failed: list[str] = []
    mine = [path for path in _entries(work_dir, WORK_FILE_PREFIX) if work_file_job(path.name) == job_id]
    count, _ = _remove(mine, None, failed)
    return count


def new_upload_file(spool_dir: Path) -> Path:
    """A fresh, unique name for an upload in the spool."""
    return spool_dir / f"{UPLOAD_PREFIX}{uuid.uuid4().hex}"


def partial_file(final: Path) -> Path:
    """Where an upload is written while it is being received."""
    return final.with_name(final.name + PARTIAL_SUFFIX)


@dataclass(frozen=True)
class JobFolders:
    spool_dir: Path
    work_dir: Path
    unclaimed_age: float = 3600.0  # seconds an upload that no job names may sit untouched

    @classmethod
    def from_settings(cls, settings: Settings) -> JobFolders:
        return cls(spool_dir=settings.data_dir / "spool", work_dir=settings.data_dir / "work")


@dataclass(frozen=True)
class Removed:
    spool_files: int = 0
    work_files: int = 0
    bytes: int = 0

    @property
    def files(self) -> int:
        return self.spool_files + self.work_files


async def remove_leftovers(queue: JobQueue, folders: JobFolders, *, when: str) -> Removed:
    """Remove the spool and work files of jobs that ended; one `leftovers_removed` line when any went.

    `when` ("start-up", "periodic") is logged with it. Database errors propagate (the
    caller retries); a folder that cannot be read is logged and skipped."""
    try:
        spool = await asyncio.to_thread(_entries, folders.spool_dir, UPLOAD_PREFIX)
        work = await asyncio.to_thread(_entries, folders.work_dir, WORK_FILE_PREFIX)
    except OSError as exc:
        log.warning("leftovers_unreadable", folder=exc.filename, error=exc.strerror or str(exc))
        return Removed()
    owned = {path: job_id for path in work if (job_id := work_file_job(path.name)) is not None}
    finals = {path.name for path in spool if not path.name.endswith(PARTIAL_SUFFIX)}
    if not owned and not spool:
        return Removed()
    owners = await queue.file_owners(job_ids=set(owned.values()), upload_names=finals)
    named = owners.live_uploads | owners.ended_uploads
    ended = [path for path in spool if path.name in owners.ended_uploads]
    unclaimed = [path for path in spool if path.name not in named]
    work_gone = [path for path, job_id in owned.items() if job_id not in owners.live_jobs]

    failed: list[str] = []
    spool_count, spool_bytes = await asyncio.to_thread(_remove, ended, None, failed)
    aged_count, aged_bytes = await asyncio.to_thread(_remove, unclaimed, folders.unclaimed_age, failed)
    work_count, work_bytes = await asyncio.to_thread(_remove, work_gone, None, failed)
    removed = Removed(spool_count + aged_count, work_count, spool_bytes + aged_bytes + work_bytes)
    if failed:
        log.warning("leftovers_not_removed", count=len(failed), first=failed[0])
    if removed.files:
        log.info(
            "leftovers_removed",
            when=when,
            spool_files=removed.spool_files,
            work_files=removed.work_files,
            bytes=removed.bytes,
            spool=str(folders.spool_dir),
            work=str(folders.work_dir),
        )
    return removed


def _entries(folder: Path, prefix: str) -> list[Path]:
    if not folder.is_dir():
        return []
    return [Path(entry.path) for entry in os.scandir(folder) if entry.name.startswith(prefix)]


def _remove(paths: list[Path], older_than: float | None, failed: list[str]) -> tuple[int, int]:
    """Remove files (and folders); with `older_than`, only those untouched that long. (count, bytes).

    What cannot be removed is added to `failed` ("path: reason") and left for the next sweep."""
    count = size = 0
    for path in paths:
        try:
            info = path.lstat()
            if older_than is not None and time.time() - info.st_mtime <= older_than:
                continue  # written to just now: an upload on its way after all
            if stat.S_ISDIR(info.st_mode):
                freed = _folder_size(path)
                shutil.rmtree(path)
            else:
                freed = info.st_size
                path.unlink()
        except FileNotFoundError:  # gone meanwhile: its job removed it
            continue
        except OSError as exc:
            failed.append(f"{path}: {exc.strerror or exc}")
            continue
        count += 1
        size += freed
    return count, size


def _folder_size(folder: Path) -> int:
    total = 0
    for root, _, names in os.walk(folder):
        for name in names:
            with contextlib.suppress(OSError):
                total += (Path(root) / name).lstat().st_size
    return total
