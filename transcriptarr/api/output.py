"""Provider answers: stored cues rendered as whisper-asr-webservice renders them, or why not."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from pathlib import Path
from typing import Final

import pysubs2
from aiohttp import web

from transcriptarr.api.errors import provider_error
from transcriptarr.db.models import Job, JobState
from transcriptarr.policy.output_formats import PROVIDER_OUTPUTS, content_type
from transcriptarr.subtitles.cues import Cue
from transcriptarr.subtitles.formats import render
from transcriptarr.subtitles.stored import load_cues

# /asr's `output` choices: the formats policy/output_formats.py marks `provider`.
OUTPUTS: Final = PROVIDER_OUTPUTS
NO_SPEECH = "no speech was recognised in the audio; there is nothing to subtitle"


def cues_response(cues: Sequence[Cue], language: str | None, output: str) -> web.Response:
    """200 with the rendered document; no speech is a 422 error (json: an empty document).

    An empty or whitespace-only body would be saved by Bazarr as a valid, empty
    subtitle, and it would never ask again: so "no speech" is an error text.
    """
    if not any(line.strip() for cue in cues for line in cue.lines) and output != "json":
        return provider_error(422, NO_SPEECH)
    body = render(cues, output, language=language)
    return web.Response(
        text=body,
        content_type=content_type(output),
        charset="utf-8",
        headers={
            "Asr-Engine": "faster_whisper",
            "Content-Disposition": f'attachment; filename="audio_file.{output}"',
        },
    )


def job_response(job: Job, output: str) -> web.Response:
    """The final answer for a job that has finished."""
    if job.state == JobState.COMPLETED:
        if job.result_text is None:
            return provider_error(500, f"job {job.id} completed without a stored result; ask again")
        try:
            language, cues = load_cues(job.result_text)
        except ValueError as exc:
            return provider_error(500, f"job {job.id}: {exc}")
        return cues_response(cues, language, output)
    if job.state == JobState.CANCELLED:
        return provider_error(409, f"job {job.id} was cancelled: {job.error or 'on request'}")
    reason = job.error or "unknown error"
    # A permanent failure is the input's fault (undecodable audio); anything else is ours.
    return provider_error(422 if job.error_permanent else 500, f"transcription failed (job {job.id}): {reason}")


async def load_subtitle_file(path: Path) -> list[Cue]:
    """A subtitle file we wrote earlier, as cues (text only; no word timings)."""

    def read() -> list[Cue]:
        subs = pysubs2.load(str(path), encoding="utf-8")
        cues = []
        for event in subs:
            if event.is_comment:
                continue
            lines = tuple(line for line in event.plaintext.split("\n") if line.strip())
            if lines:
                cues.append(Cue(start=event.start / 1000, end=event.end / 1000, lines=lines, words=()))
        return cues

    return await asyncio.to_thread(read)
