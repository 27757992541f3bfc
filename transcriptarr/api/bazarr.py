"""The Bazarr "Whisper" provider routes: POST /asr, POST /detect-language, GET /status.

See docs/bazarr-contract.md. In short: read the upload at once, answer a
repeat from the job already running or the stored result, keep the client's
read timeout from firing while the job runs, and never answer a failure with
something Bazarr could save as a subtitle.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import structlog
from aiohttp import web

from transcriptarr import __version__
from transcriptarr.api.config import ApiConfig
from transcriptarr.api.detect import DecodeError, answer, decode_head
from transcriptarr.api.errors import ApiError, json_error, provider_error
from transcriptarr.api.intake import Upload, receive_upload
from transcriptarr.api.keys import CONFIG, DEPS, DETECT_SLOTS, METRICS, SHUTTING_DOWN
from transcriptarr.api.output import OUTPUTS, cues_response, job_response, load_subtitle_file
from transcriptarr.api.security import OutsideLibrary, client_allowed, inside_library
from transcriptarr.api.waiting import WaitEnd, wait_for_job
from transcriptarr.db.models import Source, Task
from transcriptarr.media.audio import BYTES_PER_SAMPLE, SAMPLE_RATE, decode_pcm_bytes
from transcriptarr.policy.capabilities import translation_refusal
from transcriptarr.policy.languages import whisper_code
from transcriptarr.queue.events import Event
from transcriptarr.queue.jobqueue import NewJob
from transcriptarr.queue.keys import upload_key
from transcriptarr.queue.options import LIBRARY_VIDEO

log = structlog.get_logger(__name__)

MODE_OFF = "provider mode is off; set TRANSCRIPTARR_MODE=provider or standalone,provider"
_TRUE = frozenset({"true", "1", "yes", "on"})
_FALSE = frozenset({"false", "0", "no", "off"})


@dataclass(frozen=True)
class AsrParams:
    task: Task
    language: str | None  # Whisper code of the audio; None: detect it
    output: str
    encode: bool
    video_file: str | None
    initial_prompt: str | None
    vad_filter: bool | None
    word_timestamps: bool | None

    @property
    def target_language(self) -> str | None:
        return "en" if self.task == Task.TRANSLATE else self.language


def _flag(query: Mapping[str, str], name: str, default: bool | None) -> bool | None:
    raw = query.get(name)
    if raw is None or raw == "":
        return default
    if raw.lower() in _TRUE:
        return True
    if raw.lower() in _FALSE:
        return False
    raise ApiError(400, f"{name}={raw!r} is not a boolean; use true or false")


def parse_asr(query: Mapping[str, str]) -> AsrParams:
    """Validate the query like whisper-asr-webservice does; unknown parameters are ignored."""
    task_raw = (query.get("task") or "transcribe").lower()
    try:
        task = Task(task_raw)
    except ValueError:
        raise ApiError(400, f"unknown task {task_raw!r}; use transcribe or translate") from None
    language = None
    if raw := (query.get("language") or "").strip():
        language = whisper_code(raw)
        if language is None:
            raise ApiError(400, f"unknown language {raw!r}; use a Whisper language code such as en, de, pt, zh")
    output = (query.get("output") or "txt").lower()
    if output not in OUTPUTS:
        raise ApiError(400, f"unknown output {output!r}; use one of {', '.join(OUTPUTS)}")
    return AsrParams(
        task=task,
        language=language,
        output=output,
        encode=bool(_flag(query, "encode", True)),
        video_file=query.get("video_file") or None,
        initial_prompt=query.get("initial_prompt") or None,
        vad_filter=_flag(query, "vad_filter", None),
        word_timestamps=_flag(query, "word_timestamps", None),
    )


def translation_refusal_for(params: AsrParams, model: str) -> str | None:
    """Why `task=translate` cannot be done with this model; None when it can (or English audio needs none)."""
    if params.task != Task.TRANSLATE or params.language == "en":
        return None  # "translating" English audio is transcribing it, which every model does
    refusal = translation_refusal(model)
    if refusal is None:
        return None
    return f"task=translate refused: {refusal}; or ask for task=transcribe"


def provider_gate(request: web.Request) -> web.Response | None:
    """Mode and client network decide; Bazarr cannot send an API key."""
    if not request.app[DEPS].settings.provider_enabled:
        return provider_error(404, MODE_OFF)
    if not client_allowed(request.remote, request.app[CONFIG].allowed_networks):
        return provider_error(403, f"client {request.remote} is not in PROVIDER_ALLOWED_NETWORKS")
    return None


# --------------------------------------------------------------------------- GET /status


async def status(request: web.Request) -> web.Response:
    if (denied := provider_gate(request)) is not None:
        return denied
    return web.json_response({"version": __version__})


# --------------------------------------------------------------------------- POST /asr


async def asr(request: web.Request) -> web.StreamResponse:
    if (denied := provider_gate(request)) is not None:
        return denied
    deps, config = request.app[DEPS], request.app[CONFIG]
    try:
        params = parse_asr(request.query)
    except ApiError as exc:
        return provider_error(exc.status, exc.message)
    if (refusal := translation_refusal_for(params, deps.settings.whisper_model)) is not None:
        log.info("upload_rejected", route="asr", status=422, reason=refusal, client=request.remote)
        return provider_error(422, refusal)

    # Bazarr names the video as it sees it; PATH_MAPPINGS gives this machine's name for the library look-up.
    # The job's key and details keep Bazarr's own name: a repeated request finds its job and stored result
    # even after PATH_MAPPINGS changed. The worker reads the library file only to transcribe the track the
    # language names when Bazarr's ffmpeg command uploaded another (workers/library_track.py).
    local_video = deps.paths.map(params.video_file) if params.video_file else None
    library_video = await _in_library(request, local_video) if local_video is not None else None
    written = await _written_subtitle(request, params, local_video, library_video)
    if written is not None:
        return written

    try:
        upload = await receive_upload(
            request,
            spool_dir=config.spool_dir,
            max_bytes=config.max_upload_bytes,
            idle_seconds=config.upload_idle_seconds,
        )
    except ApiError as exc:
        log.info("upload_rejected", route="asr", status=exc.status, reason=exc.message, client=request.remote)
        return provider_error(exc.status, exc.message)
    request.app[METRICS].upload_received(upload.size, upload.seconds)
    assert upload.path is not None and upload.sha256 is not None
    handed_over = False
    try:
        if (problem := _bad_audio(upload, params.encode)) is not None:
            log.info("upload_rejected", route="asr", status=400, reason=problem, client=request.remote)
            return provider_error(400, problem)
        key = upload_key(upload.sha256, params.task.value, params.language, params.video_file)
        stored = await deps.queue.find_result(key)
        if stored is not None:
            log.info("bazarr_answered_from_result", job_id=stored.id, bytes=upload.size)
            return job_response(stored, params.output)
        async with deps.events.subscribe() as events:
            result = await deps.queue.enqueue(
                NewJob(
                    source=Source.BAZARR,
                    task=params.task,
                    upload_path=str(upload.path),
                    content_key=key,
                    source_language=params.language,
                    target_language=params.target_language,
                    quality=deps.settings.quality,
                    options=_options(params, library_video),
                    details={"client": request.remote, "video_file": params.video_file, "bytes": upload.size},
                )
            )
            handed_over = result.created
            if result.created:
                deps.pool.wake()
            log.info(
                "bazarr_request_queued" if result.created else "bazarr_request_attached",
                job_id=result.job.id,
                reason=result.reason,
                bytes=upload.size,
                intake_seconds=round(upload.seconds, 3),
                task=params.task.value,
                language=params.language,
                video_file=params.video_file,
            )
            return await _wait_and_answer(request, config, result.job.id, events, params.output)
    finally:
        if not handed_over:
            await asyncio.to_thread(upload.path.unlink, missing_ok=True)


def _bad_audio(upload: Upload, encode: bool) -> str | None:
    if upload.size == 0:
        return "the audio_file part is empty"
    if not encode and upload.size % BYTES_PER_SAMPLE:
        return (
            f"encode=false expects raw 16-bit PCM, but {upload.size} bytes is an odd count; "
            "send s16le mono 16 kHz audio, or encode=true for a media file"
        )
    return None


def _options(params: AsrParams, library_video: Path | None) -> dict[str, object]:
    options: dict[str, object] = {"encode": params.encode, "output": params.output}
    if library_video is not None and params.language is not None:
        # The worker checks its tracks: Bazarr's ffmpeg command uploads the default one, whatever the language.
        options[LIBRARY_VIDEO] = str(library_video)
    if params.initial_prompt is not None:
        options["initial_prompt"] = params.initial_prompt
    if params.vad_filter is not None:
        options["vad_filter"] = params.vad_filter
    if params.word_timestamps is not None:
        options["word_timestamps"] = params.word_timestamps
    return options


async def _wait_and_answer(
    request: web.Request, config: ApiConfig, job_id: int, events: asyncio.Queue[Event], output: str
) -> web.StreamResponse:
    waited = await wait_for_job(
        request,
        request.app[DEPS].queue,
        job_id,
        events,
        keepalive_seconds=config.keepalive_seconds,
        poll_seconds=config.poll_seconds,
        max_wait_seconds=config.max_wait_seconds,
        shutting_down=request.app[SHUTTING_DOWN],
    )
    minutes = config.max_wait_seconds / 60
    match waited.end:
        case WaitEnd.FINISHED:
            assert waited.job is not None
            if waited.job.upload_path:
                # A job cancelled while queued never reaches a worker, which would remove its audio.
                await asyncio.to_thread(Path(waited.job.upload_path).unlink, missing_ok=True)
            log.info("bazarr_answered", job_id=job_id, state=waited.job.state, keepalives=waited.keepalives)
            return job_response(waited.job, output)
        case WaitEnd.TIMED_OUT:
            log.warning("bazarr_wait_timed_out", job_id=job_id, minutes=minutes)
            return provider_error(
                504, f"job {job_id} has no result after {minutes:g} minutes (MAX_JOB_MINUTES); it goes on, ask again"
            )
        case WaitEnd.SHUTTING_DOWN:
            return provider_error(503, f"Transcriptarr is shutting down; job {job_id} is kept, ask again later")
        case WaitEnd.CLIENT_GONE:
            # The job goes on: Bazarr's retry will attach to it or find the stored result.
            log.info("bazarr_client_gone", job_id=job_id, keepalives=waited.keepalives)
            return provider_error(503, f"the client went away; job {job_id} goes on")
        case _:
            return provider_error(500, f"job {job_id} disappeared from the queue; ask again")


async def _in_library(request: web.Request, local_video: str) -> Path | None:
    """The library file `local_video` names (confinement.py's rule); None outside LIBRARY_PATHS or unresolvable."""
    settings = request.app[DEPS].settings
    try:
        return await asyncio.to_thread(
            inside_library, local_video, settings.library_paths, follow_symlinks=settings.library_follow_symlinks
        )
    except (OutsideLibrary, OSError, RuntimeError, ValueError):  # RuntimeError: a symlink loop, ~unknown_user
        return None


async def _written_subtitle(
    request: web.Request, params: AsrParams, local_video: str | None, media: Path | None
) -> web.StreamResponse | None:
    """A subtitle we already wrote next to the video (`media`: `local_video` inside a library), in the wanted
    language."""
    subtitles = request.app[DEPS].subtitles
    target = params.target_language
    if local_video is None or media is None or target is None:
        return None
    for candidate in dict.fromkeys((str(media), local_video)):
        for path, language in await subtitles.for_media(candidate):
            if whisper_code(language) != target or not await asyncio.to_thread(Path(path).is_file):
                continue
            try:
                cues = await load_subtitle_file(Path(path))
            except Exception as exc:  # unreadable or edited into something else: transcribe instead
                log.warning("written_subtitle_unreadable", path=path, error=str(exc))
                continue
            # The body is still on its way: read it to the end, or the client's send fails.
            with contextlib.suppress(ApiError):
                config = request.app[CONFIG]
                await receive_upload(
                    request, spool_dir=None, max_bytes=None, hashing=False, idle_seconds=config.upload_idle_seconds
                )
            log.info("bazarr_answered_from_library", video_file=params.video_file, subtitle=path)
            return cues_response(cues, target, params.output)
    return None


# --------------------------------------------------------------------------- POST /detect-language


async def detect_language(request: web.Request) -> web.StreamResponse:
    """`{language_code, detected_language, confidence}`, or exactly `{}` when it cannot tell."""
    if (denied := provider_gate(request)) is not None:
        return denied
    deps, config = request.app[DEPS], request.app[CONFIG]
    try:
        encode = bool(_flag(request.query, "encode", True))
    except ApiError as exc:
        return json_error(exc.status, exc.message)
    head = round(config.detect_max_seconds * SAMPLE_RATE) * BYTES_PER_SAMPLE
    try:
        # Raw PCM: keep only the head in memory. A container needs the whole file for ffmpeg.
        upload = await receive_upload(
            request,
            spool_dir=config.spool_dir if encode else None,
            max_bytes=config.max_upload_bytes if encode else None,
            keep_head=0 if encode else head,
            hashing=False,
            idle_seconds=config.upload_idle_seconds,
        )
    except ApiError as exc:
        log.info("upload_rejected", route="detect-language", status=exc.status, reason=exc.message)
        return json_error(exc.status, exc.message)
    request.app[METRICS].upload_received(upload.size, upload.seconds)
    try:
        if upload.size == 0 or (not encode and upload.size % BYTES_PER_SAMPLE):
            log.info("language_not_detected", reason="empty upload or not 16-bit PCM", bytes=upload.size)
            return web.json_response({})
        if upload.path is not None:
            samples = await decode_head(upload.path, config.detect_max_seconds)
        else:
            samples = decode_pcm_bytes(upload.head)
        async with request.app[DETECT_SLOTS]:
            guess = await deps.detect_language(samples)  # the model runs in a thread (workers/upload_language.py)
    except DecodeError as exc:
        log.info("language_not_detected", reason=str(exc))
        return web.json_response({})
    except Exception as exc:  # Bazarr gives up quietly on {}; anything else throttles it
        log.warning("language_detection_failed", error=f"{type(exc).__name__}: {exc}")
        return web.json_response({})
    finally:
        if upload.path is not None:
            await asyncio.to_thread(upload.path.unlink, missing_ok=True)
    found = answer(guess)
    log.info(
        "language_detected" if found else "language_not_detected",
        language=found.get("language_code"),
        confidence=found.get("confidence"),
        seconds=round(len(samples) / SAMPLE_RATE, 1),
    )
    return web.json_response(found)


def add_routes(app: web.Application, prefix: str) -> None:
    """At the root, and under the path prefix too (Bazarr's Test button ignores the prefix)."""
    for base in dict.fromkeys(("", prefix)):
        app.router.add_post(f"{base}/asr", asr)
        app.router.add_post(f"{base}/detect-language", detect_language)
        app.router.add_get(f"{base}/status", status)
