"""One job, start to finish: media file in, sidecar subtitle out.

probe -> choose the audio track -> extract it to 16 kHz PCM on disk -> source
language (forced, track tag, or Whisper voting over windows) -> transcribe or
translate in a thread -> cues -> atomic write next to the media.

Every failure becomes a `JobFailure` whose message tells the user what
happened to which file, and whether retrying can help.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import dataclasses
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, TypeVar

import structlog

from transcriptarr.cpu_priority import niced_threads
from transcriptarr.db.models import Job, Stage
from transcriptarr.media.audio import (
    AudioExtractError,
    ExtractedAudio,
    choose_audio_track,
    extract_audio,
    iter_chunks,
)
from transcriptarr.media.probe import MediaInfo, ProbeError, incomplete_media, probe_media
from transcriptarr.policy.languages import normalize_language, whisper_code
from transcriptarr.policy.naming import SubtitleNaming, subtitle_path
from transcriptarr.policy.plans import Plan, Task, plan_task
from transcriptarr.queue.leftovers import work_file_path
from transcriptarr.subtitles.cues import CueRules, build_cues
from transcriptarr.subtitles.formats import render
from transcriptarr.subtitles.owned_write import OVERWRITE_HINT, replaceable, write_owned
from transcriptarr.subtitles.registry import MediaIdentity, SubtitleRegistry
from transcriptarr.subtitles.stored import dump_cues
from transcriptarr.subtitles.writer import (
    SubtitleWriteError,
    check_folder_writable,
    check_name_length,
    remove_stale_temp_files,
)
from transcriptarr.workers.bundled_models import ModelLoadError
from transcriptarr.workers.checkpoints import CheckpointFile, job_checkpoint
from transcriptarr.workers.language import detect_language
from transcriptarr.workers.library_track import library_track
from transcriptarr.workers.models import ModelManager
from transcriptarr.workers.presets import Preset, get_preset
from transcriptarr.workers.transcribe import PartialTranscript, Transcript, TranscriptionCancelled, transcribe

log = structlog.get_logger(__name__)
T = TypeVar("T")


class JobFailure(Exception):
    """The job cannot be done now (`permanent=False`: retry later) or ever."""

    def __init__(self, message: str, *, permanent: bool, counted: bool = True) -> None:
        super().__init__(message)
        self.permanent = permanent
        # False: the file, not the job, was not ready (still copied, replaced meanwhile): the
        # retry is not one of MAX_RETRIES, so a slow copy never uses them up.
        self.counted = counted


class JobCancelled(Exception):
    """The job was cancelled on request while it ran."""


@dataclass
class JobContext:
    """What a running job shares with the worker that watches it.

    `progress` and `stage` are written by the job (progress from the inference
    thread) and read by the worker's heartbeat, which writes them to the
    database at most about once a second.
    """

    job: Job
    progress: float = 0.0  # 0..100
    stage: Stage = Stage.PENDING
    fields: dict[str, Any] = field(default_factory=dict)
    cancelled: threading.Event = field(default_factory=threading.Event)
    stage_started: float = field(default_factory=time.monotonic)  # when `stage` began, for speed and ETA

    def enter(self, stage: Stage, **fields: Any) -> None:
        self.stage = stage
        self.stage_started = time.monotonic()
        self.fields.update(fields)
        # Lines logged from now on by this task (and the threads it starts) carry the new stage.
        structlog.contextvars.bind_contextvars(stage=stage.value)
        log.info("job_stage", job_id=self.job.id, path=self.job.media_path, stage=stage.value)

    def on_progress(self, fraction: float) -> None:
        self.progress = round(100.0 * max(0.0, min(1.0, fraction)), 1)


@dataclass(frozen=True)
class Outcome:
    """A finished job: what was written (or stored), or why nothing was."""

    result_path: str | None = None
    result_text: str | None = None
    skipped: str | None = None
    fields: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class EngineConfig:
    model: str
    device: str = "auto"
    cpu_fallback: bool = True
    preferred_audio_languages: tuple[str, ...] = ()
    force_language: str | None = None
    # SubtitleNaming.from_settings: the library rules and the Bazarr integration name files the same way.
    naming: SubtitleNaming = field(default_factory=SubtitleNaming)
    overwrite_foreign: bool = False
    file_mode: int | None = 0o644
    uid: int | None = None
    gid: int | None = None
    work_dir: Path = Path("./data/work")
    worker_nice: int | None = None  # WORKER_NICE: of the inference threads and ffmpeg (transcriptarr/cpu_priority.py)
    chunk_seconds: float = 1200.0
    checkpoint_seconds: float = 30.0  # CHECKPOINT_SECONDS: audio between checkpoints (workers/checkpoints.py)
    detect_window_seconds: float = 30.0
    detect_offset_seconds: float = 120.0
    detect_windows: int = 3
    cue_rules: CueRules = field(default_factory=CueRules)
    # Library-wide decoding controls: WHISPER_INITIAL_PROMPT, WHISPER_HOTWORDS, WHISPER_EXTRA_ARGS (checked).
    initial_prompt: str | None = None
    hotwords: str | None = None
    extra_args: Mapping[str, Any] = field(default_factory=dict)


class JobRunner:
    def __init__(self, config: EngineConfig, models: ModelManager, subtitles: SubtitleRegistry) -> None:
        self.config = config
        self.models = models
        self.subtitles = subtitles
        self._inference = niced_threads(config.worker_nice, "inference")
        config.work_dir.mkdir(parents=True, exist_ok=True)

    async def run(self, ctx: JobContext, *, device: str | None = None) -> Outcome:
        job = ctx.job
        if job.upload_path is not None:
            return await self._run_upload(ctx, Path(job.upload_path), device)
        if job.media_path is None:
            raise JobFailure(f"job {job.id} names neither a media file nor an upload", permanent=True)
        media = Path(job.media_path)
        # What the file is now: checked again before the subtitle is written (a file replaced meanwhile).
        identity = await asyncio.to_thread(_identity_of, media)
        info = await self._probe(ctx, media, measure_length=True)
        _refuse_incomplete(info, media)
        stream, reason = choose_audio_track(info, self.config.preferred_audio_languages)
        track = {"index": stream.index, "language": stream.raw_language, "reason": reason}
        ctx.fields.update(media_duration=info.duration, details={**job.details, "audio_track": track})
        log.info("audio_track_chosen", job_id=job.id, path=str(media), stream=stream.index, reason=reason)

        known = self._known_language(stream.language)
        if known is not None:
            early = self._plan_or_skip(ctx, known, "audio track tag" if not self.config.force_language else "forced")
            if isinstance(early, Outcome):
                return early
        target_path = self._target_path(media, job.target_language or known)
        kept = await self._why_not_writable(target_path, job) if target_path is not None else None
        if kept is not None:
            return self._skip(ctx, f"{target_path} {kept}; {OVERWRITE_HINT}")

        try:  # a read-only or full media folder: say so now, not after the transcription
            await asyncio.to_thread(check_folder_writable, media)
        except SubtitleWriteError as exc:
            raise _write_failure(exc, job) from None

        ctx.enter(Stage.EXTRACTING_AUDIO)
        # Named after the job: the sweep of leftovers (queue/leftovers.py) removes it once the job ended.
        work_file = work_file_path(self.config.work_dir, job.id, ".pcm")
        try:
            audio = await self._extract(media, stream.index, work_file)
            return await self._transcribe_and_write(ctx, media, audio, info, known, device, identity)
        finally:
            work_file.unlink(missing_ok=True)

    async def _run_upload(self, ctx: JobContext, upload: Path, device: str | None) -> Outcome:
        """A Bazarr request: audio uploaded to the spool; the result is stored, not written next to media."""
        job = ctx.job
        if not await asyncio.to_thread(upload.is_file):
            raise JobFailure(f"the uploaded audio of job {job.id} is gone ({upload}); ask again", permanent=True)
        # Named after the job: the sweep of leftovers (queue/leftovers.py) removes it once the job ended.
        work_file = work_file_path(self.config.work_dir, job.id, ".pcm")
        try:
            # Bazarr's ffmpeg command may have sent another track than the language asked for.
            chosen = await library_track(ctx, work_file, nice=self.config.worker_nice)
            if chosen is not None:
                audio = chosen.audio
                ctx.fields["details"] = {**job.details, "audio_track": chosen.track}
            elif job.options.get("encode", False):
                info = await self._probe(ctx, upload)
                stream, _ = choose_audio_track(info, self.config.preferred_audio_languages)
                ctx.enter(Stage.EXTRACTING_AUDIO)
                audio = await self._extract(upload, stream.index, work_file)
            else:
                audio = ExtractedAudio.from_pcm_file(upload)
            ctx.fields.update(media_duration=audio.duration)
            known = whisper_code(job.source_language) if job.source_language else None
            recognised, _ = await self._with_model(
                device,
                lambda model: self._recognise(
                    ctx,
                    model,
                    lambda: _chunks(audio, self.config.chunk_seconds),
                    audio.duration,
                    known,
                    _preset_for(job, self.config.extra_args),
                ),
                ctx=ctx,
            )
        except ModelLoadError as exc:
            raise JobFailure(str(exc), permanent=False) from None
        finally:
            work_file.unlink(missing_ok=True)
        if isinstance(recognised, Outcome):  # no speech: an empty result, stored like any other
            return Outcome(result_text=dump_cues([], None), skipped=recognised.skipped, fields=recognised.fields)
        transcript, language = recognised
        cues = await asyncio.to_thread(
            build_cues, transcript.words, self.config.cue_rules, duration=audio.duration, speech=transcript.speech
        )
        ctx.fields.update(target_language=language)
        details = {**ctx.fields.get("details", job.details), "cues": len(cues), "words": len(transcript.words)}
        return Outcome(result_text=dump_cues(cues, language), fields={**ctx.fields, "details": details})

    # --- steps ---
    async def _probe(self, ctx: JobContext, media: Path, *, measure_length: bool = False) -> MediaInfo:
        ctx.enter(Stage.PROBING)
        try:
            return await probe_media(media, measure_length=measure_length)
        except ProbeError as exc:
            raise JobFailure(str(exc), permanent=exc.permanent) from None

    async def _extract(self, media: Path, index: int, dest: Path) -> ExtractedAudio:
        try:
            return await extract_audio(media, index, dest, nice=self.config.worker_nice)
        except AudioExtractError as exc:
            raise JobFailure(str(exc), permanent=exc.permanent) from None

    def _known_language(self, tag: str | None) -> str | None:
        forced = self.config.force_language
        if forced:
            return whisper_code(normalize_language(forced)) or forced
        return whisper_code(tag) if tag else None

    def _plan_or_skip(self, ctx: JobContext, source: str, how: str) -> Plan | Outcome:
        plan = plan_task(source, ctx.job.target_language, self.config.model)
        if isinstance(plan, str):
            return self._cannot(ctx, plan)
        ctx.fields.update(source_language=source, task=plan.task.value)
        ctx.fields["details"] = {**ctx.fields.get("details", ctx.job.details), "language_from": how}
        return plan

    def _cannot(self, ctx: JobContext, reason: str) -> Outcome:
        """The model cannot make what the job asks for: a library job is skipped, an upload fails.

        (An upload's skip would be stored as an empty subtitle, which a client takes for "no speech".)"""
        if ctx.job.upload_path is not None:
            raise JobFailure(reason, permanent=True)
        return self._skip(ctx, reason)

    def _skip(self, ctx: JobContext, reason: str) -> Outcome:
        log.info("job_skipped", job_id=ctx.job.id, path=ctx.job.media_path, reason=reason)
        details = {**ctx.fields.get("details", ctx.job.details), "skipped": reason}
        return Outcome(skipped=reason, fields={**ctx.fields, "details": details})

    def _target_path(self, media: Path, language: str | None) -> Path | None:
        if language is None:
            return None
        return subtitle_path(media, language, self.config.naming)

    async def _why_not_writable(self, path: Path, job: Job) -> str | None:
        """None if `path` may be written; else why the file there is kept (someone else's)."""
        try:
            check_name_length(path)
        except SubtitleWriteError as exc:
            raise _write_failure(exc, job) from None
        return await replaceable(self.subtitles, path, overwrite_foreign=self.config.overwrite_foreign)

    async def _transcribe_and_write(
        self,
        ctx: JobContext,
        media: Path,
        audio: ExtractedAudio,
        info: MediaInfo,
        known: str | None,
        device: str | None,
        identity: MediaIdentity | None = None,
    ) -> Outcome:
        preset = _preset_for(ctx.job, self.config.extra_args)
        duration = audio.duration

        def chunks() -> Any:
            return _chunks(audio, self.config.chunk_seconds)

        try:
            recognised, used_device = await self._with_model(
                device, lambda model: self._recognise(ctx, model, chunks, duration, known, preset, identity), ctx=ctx
            )
        except ModelLoadError as exc:
            raise JobFailure(str(exc), permanent=False) from None
        if isinstance(recognised, Outcome):
            return recognised
        transcript, language = recognised

        ctx.enter(Stage.WRITING)
        # No `offset`: extraction pads a late-starting stream, so the words are on the media's timeline.
        # Cue building is pure CPU work (about a second for a feature film): off the event loop.
        cues = await asyncio.to_thread(
            build_cues, transcript.words, self.config.cue_rules, duration=info.duration, speech=transcript.speech
        )
        ctx.fields.update(target_language=language)
        if not cues:
            # An empty subtitle would tell media servers and Bazarr "done"; say why instead.
            return self._skip(ctx, "no speech was recognised in the audio track; no subtitle written")
        path = self._target_path(media, language)
        assert path is not None
        # The media replaced or grown during the transcription: this result is stale; do it again.
        _refuse_changed(media, identity, await asyncio.to_thread(_identity_of, media))
        kept = await self._why_not_writable(path, ctx.job)
        if kept is not None:
            return self._skip(ctx, f"{path} {kept} (appeared meanwhile); {OVERWRITE_HINT}")
        # Temp files of writes that a killed process never finished: those of this very subtitle at
        # any age (only the job that owns this target writes it, so they are from an interrupted
        # attempt), those of other files once old (an old one is never in flight).
        await asyncio.to_thread(remove_stale_temp_files, path.parent, only_for=path)
        await asyncio.to_thread(remove_stale_temp_files, path.parent, min_age=120.0)
        fmt = self.config.naming.format_for(media)  # lrc for an audio file (AUDIO_LYRICS), else SUBTITLE_FORMAT
        text = await asyncio.to_thread(render, cues, fmt, language=language)
        # Recorded as ours (pending) before the rename, and judged from the file itself at the rename:
        # a subtitle someone saved meanwhile is kept, whatever the database was doing (owned_write.py).
        try:
            kept = await write_owned(
                self.subtitles,
                path,
                text.encode("utf-8"),
                media_path=str(media),
                language=language,
                job_id=ctx.job.id,
                media=identity,
                overwrite_foreign=self.config.overwrite_foreign,
                mode=self.config.file_mode,
                uid=self.config.uid,
                gid=self.config.gid,
            )
        except SubtitleWriteError as exc:
            raise _write_failure(exc, ctx.job) from None
        if kept is not None:
            log.warning("subtitle_kept", job_id=ctx.job.id, path=str(media), subtitle=str(path), reason=kept)
            return self._skip(ctx, f"{path} {kept}; {OVERWRITE_HINT}")
        details = {
            **ctx.fields.get("details", ctx.job.details),
            "cues": len(cues),
            "words": len(transcript.words),
            "model": self.config.model,
            "device": used_device,
            "preset": preset.name,
        }
        log.info("subtitle_written", job_id=ctx.job.id, path=str(media), subtitle=str(path), cues=len(cues))
        return Outcome(result_path=str(path), fields={**ctx.fields, "details": details})

    async def _recognise(
        self,
        ctx: JobContext,
        model: Any,
        chunks: Callable[[], Any],
        duration: float,
        known: str | None,
        preset: Any,
        identity: MediaIdentity | None = None,
    ) -> tuple[Transcript, str] | Outcome:
        """The transcript and the language it is in, or why there is nothing to do."""
        source = known
        if source is None:
            ctx.enter(Stage.DETECTING_LANGUAGE)
            guess = await self._in_thread(
                ctx,
                lambda: detect_language(
                    model,
                    chunks(),
                    duration=duration,
                    window_seconds=self.config.detect_window_seconds,
                    offset_seconds=self.config.detect_offset_seconds,
                    windows=self.config.detect_windows,
                ),
            )
            if guess is None:
                return self._skip(ctx, "no speech found in the audio track")
            source = guess.code
            ctx.fields.update(language_probability=guess.probability)
            log.info(
                "language_detected",
                job_id=ctx.job.id,
                path=ctx.job.media_path,
                language=source,
                probability=round(guess.probability, 3),
                votes=guess.votes,
            )
            plan = self._plan_or_skip(ctx, source, "detected")
            if isinstance(plan, Outcome):
                return plan
        plan_or_reason = plan_task(source, ctx.job.target_language, self.config.model)
        if isinstance(plan_or_reason, str):  # an upload's known language, planned only now
            return self._cannot(ctx, plan_or_reason)
        plan = plan_or_reason
        ctx.enter(Stage.TRANSLATING if plan.task == Task.TRANSLATE else Stage.TRANSCRIBING)
        task: Literal["transcribe", "translate"] = "translate" if plan.task == Task.TRANSLATE else "transcribe"
        # A client's own prompt (Bazarr's initial_prompt) wins over the library-wide one.
        initial_prompt = ctx.job.options.get("initial_prompt") or self.config.initial_prompt
        checkpoint, resume = await self._checkpoint(ctx, task, source, preset, initial_prompt, identity)
        transcript = await self._in_thread(
            ctx,
            lambda: transcribe(
                model,
                chunks(),
                duration=duration,
                task=task,
                language=source,
                preset=preset,
                initial_prompt=initial_prompt,
                hotwords=self.config.hotwords,
                on_progress=ctx.on_progress,
                should_cancel=ctx.cancelled.is_set,
                resume_from=resume,
                on_checkpoint=checkpoint.save if checkpoint is not None else None,
                checkpoint_seconds=self.config.checkpoint_seconds,
            ),
        )
        return transcript, plan.target_language

    async def _checkpoint(
        self,
        ctx: JobContext,
        task: str,
        language: str,
        preset: Preset,
        initial_prompt: str | None,
        identity: MediaIdentity | None,
    ) -> tuple[CheckpointFile | None, PartialTranscript | None]:
        """Where this attempt keeps its checkpoints, and what an earlier attempt finished (workers/checkpoints.py)."""
        if self.config.checkpoint_seconds <= 0:
            return None, None
        track = ctx.fields.get("details", ctx.job.details).get("audio_track") or {}
        checkpoint = await asyncio.to_thread(
            job_checkpoint,
            self.config.work_dir,
            ctx.job,
            stream=track.get("index"),
            model=self.config.model,
            task=task,
            language=language,
            preset=preset,
            initial_prompt=initial_prompt,
            hotwords=self.config.hotwords,
            # The file as it was when its audio was extracted, not as it is now: a file replaced
            # meanwhile must not lend its name to words heard from the old one.
            seen=identity,
        )
        resume = await asyncio.to_thread(checkpoint.load) if checkpoint is not None else None
        if resume is not None:
            log.info(
                "transcription_resumed",
                job_id=ctx.job.id,
                path=ctx.job.media_path,
                offset_seconds=round(resume.offset, 2),
                words=len(resume.words),
            )
            details = ctx.fields.get("details", ctx.job.details)
            ctx.fields["details"] = {**details, "resumed_from_seconds": round(resume.offset, 2)}
        return checkpoint, resume

    async def _with_model(
        self, device: str | None, work: Callable[[Any], Any], *, ctx: JobContext | None = None
    ) -> tuple[Any, str]:
        """Run `work(model)`; a GPU that runs out of memory or breaks falls back to CPU if allowed.

        With `ctx`, the job's fields name the model and device used (for its summary line)."""
        chosen = device or self.config.device
        fields = ctx.fields if ctx is not None else {}
        fields.update(model=self.config.model, device=chosen)
        try:
            async with self.models.acquire(self.config.model, device=chosen) as model:
                return await work(model), chosen
        except RuntimeError as exc:
            if not (_is_gpu_failure(exc) and self.config.cpu_fallback and chosen != "cpu"):
                raise
            log.warning("gpu_failed_falling_back_to_cpu", error=str(exc), device=chosen)
            fields.update(device="cpu")
            async with self.models.acquire(self.config.model, device="cpu") as model:
                return await work(model), "cpu"

    async def _in_thread(self, ctx: JobContext, work: Callable[[], T]) -> T:
        """Blocking inference off the event loop; a cancelled caller stops it at the next segment."""
        # In a thread at WORKER_NICE (not the default pool, which the HTTP API shares), with this task's log context.
        loop = asyncio.get_running_loop()
        future = asyncio.ensure_future(loop.run_in_executor(self._inference, contextvars.copy_context().run, work))
        try:
            return await asyncio.shield(future)
        except asyncio.CancelledError:
            ctx.cancelled.set()
            with contextlib.suppress(BaseException):
                await future
            raise
        except TranscriptionCancelled:
            raise JobCancelled(f"job {ctx.job.id} cancelled during transcription") from None


def _identity_of(media: Path) -> MediaIdentity | None:
    """Size, mtime and inode of the media now (None if it cannot be read: the probe says why)."""
    try:
        info = media.stat()
    except OSError:
        return None
    return MediaIdentity(info.st_size, info.st_mtime_ns, info.st_ino, info.st_dev)


def _refuse_changed(media: Path, before: MediaIdentity | None, now: MediaIdentity | None) -> None:
    """A media file that changed since the job started gets no subtitle from its old content."""
    if before is None:
        return
    change = "it is gone" if now is None else before.differs(now)
    if change:
        raise JobFailure(
            f"{media} changed while it was transcribed ({change}); the result is dropped and the job "
            "queued again to transcribe the file as it is now",
            permanent=False,
            counted=False,
        )


def _refuse_incomplete(info: MediaInfo, media: Path) -> None:
    """A file still being copied (its header promises more than can be read) is tried again later."""
    missing = incomplete_media(info, media)
    if missing:
        raise JobFailure(f"{media} {missing}; tried again later", permanent=False, counted=False)


def _write_failure(exc: SubtitleWriteError, job: Job) -> JobFailure:
    """A full disk is retried by itself; a read-only or forbidden folder waits for the user."""
    if exc.permanent:
        return JobFailure(f"{exc}; then queue it again: transcriptarr retry {job.id}", permanent=True)
    return JobFailure(f"{exc}; the job is retried with a growing pause (MAX_RETRIES times)", permanent=False)


def _preset_for(job: Job, extra_args: Mapping[str, Any] | None = None) -> Preset:
    """The job's quality preset with WHISPER_EXTRA_ARGS on top, and a client's `vad_filter=false` honoured
    (whisper-asr-webservice option)."""
    preset = get_preset(job.quality).with_arguments(extra_args or {})
    if job.options.get("vad_filter") is False:
        preset = dataclasses.replace(preset, vad_filter=False)
    return preset


def _chunks(audio: ExtractedAudio, chunk_seconds: float) -> Any:
    return ((chunk.offset, chunk.samples) for chunk in iter_chunks(audio, chunk_seconds=chunk_seconds))


def _is_gpu_failure(exc: BaseException) -> bool:
    text = str(exc).lower()
    return "cuda" in text or "out of memory" in text or "cublas" in text or "cudnn" in text
