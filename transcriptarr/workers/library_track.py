"""A Bazarr upload of the wrong track, replaced by the right track of the video in the library.

The API puts the library path of the request's `video_file` (mapped and confined to
LIBRARY_PATHS, api/bazarr.py) into the job's options as `LIBRARY_VIDEO`. Here the
worker probes that file; when the requested language is another track's than the one
Bazarr's ffmpeg command uploads (media/tracks.py), that track is extracted from the
file and transcribed. A file that cannot be read, probed or decoded here (gone, not
mounted on this node, replaced) leaves the upload to be trusted.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import structlog

from transcriptarr.db.models import Stage
from transcriptarr.media.audio import AudioExtractError, ExtractedAudio, extract_audio
from transcriptarr.media.probe import ProbeError, probe_media
from transcriptarr.media.tracks import track_for_language
from transcriptarr.queue.options import LIBRARY_VIDEO

if TYPE_CHECKING:
    from transcriptarr.workers.job_runner import JobContext

log = structlog.get_logger(__name__)

_PROBE_SECONDS = 60.0


@dataclass(frozen=True)
class LibraryTrack:
    audio: ExtractedAudio
    track: dict[str, Any]  # for the job's details: which track, and why


async def library_track(ctx: JobContext, work_file: Path, *, nice: int | None) -> LibraryTrack | None:
    """The right track of the job's library video extracted to `work_file`; None: transcribe the upload."""
    job = ctx.job
    video = job.options.get(LIBRARY_VIDEO)
    if not isinstance(video, str) or not job.source_language:
        return None
    ctx.enter(Stage.PROBING)
    try:
        info = await probe_media(video, timeout=_PROBE_SECONDS)
    except ProbeError as exc:
        _trust_upload(job.id, video, exc.problem)
        return None
    switch = track_for_language(info, job.source_language)
    if switch is None:
        return None
    log.info(
        "bazarr_track_switched",
        job_id=job.id,
        video=video,
        language=job.source_language,
        uploaded_stream=switch.uploaded.index,
        stream=switch.stream.index,
        reason=switch.reason,
    )
    ctx.enter(Stage.EXTRACTING_AUDIO)
    try:
        audio = await extract_audio(Path(video), switch.stream.index, work_file, nice=nice)
    except AudioExtractError as exc:
        _trust_upload(job.id, video, exc.problem)
        return None
    track = {"index": switch.stream.index, "language": switch.stream.raw_language, "reason": switch.reason}
    return LibraryTrack(audio, {"path": video, **track})


def _trust_upload(job_id: int, video: str, problem: str) -> None:
    log.info("bazarr_track_unreadable", job_id=job_id, video=video, problem=problem)
