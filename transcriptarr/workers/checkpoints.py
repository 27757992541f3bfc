"""Checkpoints: what a running transcription finished, kept so that a restart continues instead of starting over.

A job's checkpoint is a small JSON file beside its work files,
`job-<id>.checkpoint.json` (`work_file_path`): the words with their timings and
probabilities, the segments, the language, the speech regions, the audio offset
reached (a pause) and, for the sequential pipeline, the decoding window that starts
there (see `PartialTranscript`), with a fingerprint of what it was made
from: the media file (size, mtime_ns, audio track), the model, the task and language,
and the decoding settings. A later attempt of the job that finds a checkpoint with
the same fingerprint transcribes only the audio after its offset; one with another
fingerprint (the file was replaced, a setting changed) is discarded, and says why.

Written by the transcription thread (never the event loop), atomically (a temporary
file renamed over the old one), about every CHECKPOINT_SECONDS of audio. Not fsynced:
it is there for a killed process, whose writes the kernel keeps; after a power loss
a torn file is discarded like any unreadable one. The sweep of leftovers
(queue/leftovers.py) removes it once the job ended.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import structlog

from transcriptarr.db.models import Job
from transcriptarr.queue.leftovers import work_file_path
from transcriptarr.subtitles.cues import Word
from transcriptarr.subtitles.registry import MediaIdentity
from transcriptarr.workers.presets import Preset
from transcriptarr.workers.transcribe import PartialTranscript, SegmentText

__all__ = ["CHECKPOINT_SUFFIX", "CheckpointFile", "fingerprint", "job_checkpoint"]

log = structlog.get_logger(__name__)

CHECKPOINT_SUFFIX = ".checkpoint.json"
_FORMAT = 2  # bumped when the layout changes: an older file is then discarded (2: `window`)


def fingerprint(
    *,
    source: Path,
    stream: int | None,
    model: str,
    task: str,
    language: str | None,
    decoding: Mapping[str, Any],
    seen: MediaIdentity | None = None,
) -> dict[str, Any]:
    """What a checkpoint was made from; blocking (it stats ``source``), raises OSError if it is gone.

    ``decoding``: the preset's name and every argument the model gets (extra arguments,
    prompt, hotwords), as JSON-able values. ``seen``: the file as the job recorded it before
    extracting its audio (else it is stat'ed now).
    """
    if seen is None:
        info = source.stat()
        seen = MediaIdentity(info.st_size, info.st_mtime_ns, info.st_ino, info.st_dev)
    return {
        "source": str(source),
        "size": seen.size,
        "mtime_ns": seen.mtime_ns,
        "inode": seen.inode,
        "stream": stream,
        "model": model,
        "task": task,
        "language": language,
        # Through JSON and back: tuples become lists, as in the file read back later.
        "decoding": json.loads(json.dumps(decoding, sort_keys=True, default=str)),
    }


@dataclass(frozen=True)
class CheckpointFile:
    """The checkpoint of one job, made from what ``fingerprint`` describes."""

    path: Path
    fingerprint: Mapping[str, Any]
    job_id: int

    @classmethod
    def of_job(cls, work_dir: Path, job_id: int, fingerprint: Mapping[str, Any]) -> CheckpointFile:
        return cls(work_file_path(work_dir, job_id, CHECKPOINT_SUFFIX), fingerprint, job_id)

    def load(self) -> PartialTranscript | None:
        """The stored checkpoint if it was made from the same fingerprint; else None (and the file is removed)."""
        try:
            text = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return None
        except OSError as exc:
            self._discard(f"cannot be read: {exc.strerror or exc}")
            return None
        try:
            data = json.loads(text)
            if data.get("format") != _FORMAT:
                self._discard(f"is of another format ({data.get('format')!r}, this version reads {_FORMAT})")
                return None
            if data["fingerprint"] != self.fingerprint:
                changed = sorted(
                    key
                    for key in {*data["fingerprint"], *self.fingerprint}
                    if data["fingerprint"].get(key) != self.fingerprint.get(key)
                )
                self._discard(f"was made from another file or settings (changed: {', '.join(changed)})")
                return None
            return _partial(data)
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            self._discard(f"is damaged ({type(exc).__name__}: {exc})")
            return None

    def save(self, done: PartialTranscript) -> None:
        """Replace the checkpoint with ``done``; a failure is logged, never raised (the job goes on without)."""
        data = {
            "format": _FORMAT,
            "fingerprint": self.fingerprint,
            "offset": done.offset,
            "language": done.language,
            "language_probability": done.language_probability,
            "words": [[w.start, w.end, w.text, w.probability] for w in done.words],
            "segments": [[s.start, s.end, s.text] for s in done.segments],
            "speech": None if done.speech is None else [list(region) for region in done.speech],
            "window": None if done.window is None else list(done.window),
        }
        partial = self.path.with_name(self.path.name + ".part")
        try:
            partial.write_text(json.dumps(data, ensure_ascii=False, separators=(",", ":")), encoding="utf-8")
            partial.replace(self.path)
        except OSError as exc:
            with contextlib.suppress(OSError):
                partial.unlink()
            log.warning(
                "checkpoint_not_written",
                job_id=self.job_id,
                checkpoint=str(self.path),
                error=exc.strerror or str(exc),
                hint="a restart of this job starts over; free space in the work folder (DATA_DIR)",
            )
            return
        log.debug("checkpoint_written", job_id=self.job_id, offset=round(done.offset, 2), words=len(done.words))

    def remove(self) -> None:
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()

    def _discard(self, why: str) -> None:
        log.info("checkpoint_discarded", job_id=self.job_id, checkpoint=str(self.path), reason=f"checkpoint {why}")
        with contextlib.suppress(OSError):
            self.path.unlink()


def _partial(data: dict[str, Any]) -> PartialTranscript:
    speech, window = data["speech"], data["window"]
    return PartialTranscript(
        offset=float(data["offset"]),
        language=data["language"],
        language_probability=float(data["language_probability"]),
        words=tuple(Word(float(a), float(b), str(text), float(p)) for a, b, text, p in data["words"]),
        segments=tuple(SegmentText(float(a), float(b), str(text)) for a, b, text in data["segments"]),
        speech=None if speech is None else tuple((float(a), float(b)) for a, b in speech),
        window=None if window is None else (float(window[0]), int(window[1])),
    )


def job_checkpoint(
    work_dir: Path,
    job: Job,
    *,
    stream: int | None,
    model: str,
    task: str,
    language: str | None,
    preset: Preset,
    initial_prompt: str | None,
    hotwords: str | None,
    seen: MediaIdentity | None = None,
) -> CheckpointFile | None:
    """The checkpoint of ``job``'s transcription with these settings; None if its audio is gone. Blocking."""
    source = job.upload_path or job.media_path
    if source is None:
        return None
    decoding = {
        "preset": preset.name,
        "arguments": preset.transcribe_kwargs(),  # extra arguments (WHISPER_EXTRA_ARGS) included
        "initial_prompt": initial_prompt,
        "hotwords": hotwords,
        "encode": job.options.get("encode"),  # an upload read as PCM or decoded by ffmpeg
    }
    try:
        made_from = fingerprint(
            source=Path(source), stream=stream, model=model, task=task, language=language, decoding=decoding, seen=seen
        )
    except OSError:
        return None  # the job fails on the missing file by itself
    return CheckpointFile.of_job(work_dir, job.id, made_from)
