"""Writing a subtitle we may own: never over a file someone else wrote, whatever the database does.

    kept = await write_owned(registry, path, data, media_path=..., language=..., job_id=..., media=...)

1. what we may replace is read from the registry (the hashes of what we wrote there);
2. the hash of the new bytes is recorded as a pending write (waits out a database outage);
3. the file is written beside the target and, at the moment of the rename, the target is
   judged again from its own bytes: no database in between, so a subtitle the user saved
   while step 2 waited is seen and kept;
4. the pending hash is confirmed (or withdrawn when nothing was written).

A crash between 2 and 3 leaves the old file, still ours; between 3 and 4, the new one,
ours by its pending hash.
"""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path

from transcriptarr.db.outage import until_written
from transcriptarr.subtitles.registry import MediaIdentity, SubtitleRegistry
from transcriptarr.subtitles.writer import (
    ForeignSubtitle,
    Ownership,
    SubtitleWriteError,
    content_hash,
    foreign_reason,
    write_atomic,
)

OVERWRITE_HINT = "set OVERWRITE_FOREIGN_SUBTITLES=true to replace it"
_NOT_OURS = "exists and was not written by Transcriptarr"


async def replaceable(registry: SubtitleRegistry, path: Path, *, overwrite_foreign: bool) -> str | None:
    """None if `path` may be written now; else why not (a look before the work, not the final word)."""
    recorded = await until_written(lambda: registry.ownership(path), what="subtitle ownership")
    return await asyncio.to_thread(foreign_reason, path, _allowed(recorded, overwrite_foreign))


async def write_owned(
    registry: SubtitleRegistry,
    path: Path,
    data: bytes,
    *,
    media_path: str | None,
    language: str | None,
    job_id: int | None,
    media: MediaIdentity | None,
    overwrite_foreign: bool = False,
    mode: int | None = None,
    uid: int | None = None,
    gid: int | None = None,
) -> str | None:
    """Write `data` to `path` unless a file we did not write is there: None when written, else why kept.

    Raises SubtitleWriteError when the write itself fails (the pending record is withdrawn)."""
    recorded = await until_written(lambda: registry.ownership(path), what="subtitle ownership", job_id=job_id)
    ownership = _allowed(recorded, overwrite_foreign)
    digest = content_hash(data)
    current = await asyncio.to_thread(_our_current_hash, path, recorded)
    await until_written(
        lambda: registry.begin_write(
            path, sha256=digest, media_path=media_path, language=language, job_id=job_id, replaces=current
        ),
        what="subtitle record",
        job_id=job_id,
    )
    # The new bytes are ours too (a retry of the same write, or the same text as before).
    allowed = Ownership(ownership.hashes | {digest}, ownership.any_content)
    try:
        await asyncio.to_thread(write_atomic, path, data, mode=mode, uid=uid, gid=gid, ownership=allowed)
    except ForeignSubtitle as exc:
        await _withdraw(registry, path, digest, job_id)
        # Nothing of ours was ever there: say so, not "changed since" (a file that appeared meanwhile).
        return exc.reason if ownership.hashes or ownership.any_content else _NOT_OURS
    except SubtitleWriteError:
        await _withdraw(registry, path, digest, job_id)
        raise
    await until_written(
        lambda: registry.finish_write(path, sha256=digest, media=media), what="subtitle record", job_id=job_id
    )
    return None


def _allowed(recorded: Ownership, overwrite_foreign: bool) -> Ownership:
    return Ownership(any_content=True) if overwrite_foreign else recorded


def _our_current_hash(path: Path, recorded: Ownership) -> str | None:
    """The hash of the file at `path` if the registry says it is ours (kept as ours while the new write is pending)."""
    if not (recorded.hashes or recorded.any_content) or foreign_reason(path, recorded) is not None:
        return None
    with contextlib.suppress(OSError):
        return content_hash(path.read_bytes()) if path.is_file() else None
    return None


async def _withdraw(registry: SubtitleRegistry, path: Path, digest: str, job_id: int | None) -> None:
    await until_written(lambda: registry.abandon_write(path, sha256=digest), what="subtitle record", job_id=job_id)
