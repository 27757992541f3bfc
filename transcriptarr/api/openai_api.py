"""OpenAI-compatible routes: POST /v1/audio/transcriptions, POST /v1/audio/translations, GET /v1/models.

Open WebUI, Home Assistant and scripts written for OpenAI's audio API use them
unchanged (base URL `http://transcriptarr:9000/v1`, the API key as Bearer
token). An upload goes through the same persistent queue as Bazarr's: the
same audio + task + language (+ prompt) is one job, whatever `response_format`
each request asks for, and a repeat is answered from the stored result. The
upload is decoded here to the PCM a job reads (so a file that is not audio is a
400 at once, not a failed job), then the request waits for its job with
interim `100 Continue` responses that keep the client's read timeout from
firing.

`model`: the service runs one model, WHISPER_MODEL. Any model name is accepted
(clients hard-code `whisper-1` or `gpt-4o-mini-transcribe`) and transcribed
with it; GET /v1/models lists `whisper-1` and the real model. `temperature` is
validated but the QUALITY preset decides the decoding (temperature 0 first,
higher only when a segment fails its checks, as OpenAI describes for 0).
"""

from __future__ import annotations

import asyncio
import hashlib
import math
from dataclasses import dataclass
from pathlib import Path

import structlog
from aiohttp import web

from transcriptarr.api.bazarr import MODE_OFF
from transcriptarr.api.config import ApiConfig
from transcriptarr.api.keys import CONFIG, DEPS, METRICS, SHUTTING_DOWN
from transcriptarr.api.openai_errors import OpenAIError
from transcriptarr.api.openai_form import FILE_FIELD, Form, receive_form
from transcriptarr.api.openai_render import FORMATS, GRANULARITIES, answer
from transcriptarr.api.security import client_allowed
from transcriptarr.api.waiting import WaitEnd, wait_for_job
from transcriptarr.db.models import Job, JobState, Source, Task
from transcriptarr.media.audio import AudioExtractError, choose_audio_track, extract_audio
from transcriptarr.media.probe import NoAudioError, ProbeError, probe_media
from transcriptarr.policy.capabilities import translation_refusal
from transcriptarr.policy.languages import whisper_code
from transcriptarr.queue.events import Event
from transcriptarr.queue.jobqueue import NewJob
from transcriptarr.queue.keys import upload_key
from transcriptarr.subtitles.stored import load_cues

log = structlog.get_logger(__name__)

ALIAS = "whisper-1"
OWNER = "transcriptarr"
_CONTAINERS = "mp3, mp4, m4a, wav, webm, flac or ogg"


@dataclass(frozen=True)
class AudioRequest:
    task: Task
    model: str
    language: str | None  # Whisper code of the audio; None: detect it
    prompt: str | None
    response_format: str
    temperature: float
    granularities: frozenset[str]

    @property
    def target_language(self) -> str | None:
        return "en" if self.task == Task.TRANSLATE else self.language


def parse_request(form: Form, task: Task) -> AudioRequest:
    """OpenAI's form fields, validated; fields OpenAI has and we do not need (`stream`, `include`) are ignored."""
    response_format = (form.first("response_format") or "json").lower()
    if response_format not in FORMATS:
        raise OpenAIError(
            400,
            f"response_format {response_format!r} is not supported; use one of {', '.join(FORMATS)}",
            param="response_format",
        )
    language = None
    if raw := form.first("language"):
        language = whisper_code(raw)
        if language is None:
            raise OpenAIError(
                400,
                f"language {raw!r} is not a language Whisper knows; use an ISO-639-1 code such as en, de, fr, ja",
                param="language",
            )
    temperature = 0.0
    if raw := form.first("temperature"):
        try:
            temperature = float(raw)
        except ValueError:
            temperature = math.nan
        if not 0.0 <= temperature <= 1.0:
            raise OpenAIError(
                400, f"temperature {raw!r} is not a number between 0 and 1", param="temperature"
            ) from None
    granularities = form.every("timestamp_granularities[]", "timestamp_granularities")
    for granularity in granularities:
        if granularity not in GRANULARITIES:
            raise OpenAIError(
                400,
                f"timestamp_granularities[] {granularity!r} is not supported; use word, segment or both",
                param="timestamp_granularities",
            )
    return AudioRequest(
        task=task,
        model=form.first("model") or ALIAS,
        language=language,
        prompt=form.first("prompt"),
        response_format=response_format,
        temperature=temperature,
        granularities=frozenset(granularities),
    )


def content_key(audio_sha256: str, request: AudioRequest) -> str:
    """Bazarr's key for the same upload (audio + task + language); a prompt changes the words, so it counts too."""
    audio = audio_sha256
    if request.prompt is not None:
        audio = hashlib.sha256(f"{audio_sha256}\x00prompt\x00{request.prompt}".encode()).hexdigest()
    return upload_key(audio, request.task.value, request.language)


def _gate(request: web.Request) -> None:
    """The same rules as Bazarr's routes: provider mode, and the client networks allowed."""
    if not request.app[DEPS].settings.provider_enabled:
        raise OpenAIError(404, MODE_OFF)
    if not client_allowed(request.remote, request.app[CONFIG].allowed_networks):
        raise OpenAIError(403, f"client {request.remote} is not in PROVIDER_ALLOWED_NETWORKS")


# --------------------------------------------------------------------------- models


def _model_ids(request: web.Request) -> list[str]:
    return list(dict.fromkeys((ALIAS, request.app[DEPS].settings.whisper_model)))


def _model(model_id: str) -> dict[str, object]:
    return {"id": model_id, "object": "model", "created": 0, "owned_by": OWNER}


async def list_models(request: web.Request) -> web.Response:
    _gate(request)
    return web.json_response({"object": "list", "data": [_model(m) for m in _model_ids(request)]})


async def get_model(request: web.Request) -> web.Response:
    _gate(request)
    wanted = request.match_info["model"]
    if wanted not in _model_ids(request):
        raise OpenAIError(
            404,
            f"the model {wanted!r} does not exist here; this server has {' and '.join(_model_ids(request))} "
            "(every audio request is transcribed with WHISPER_MODEL, whatever model it names)",
            param="model",
            code="model_not_found",
        )
    return web.json_response(_model(wanted))


# --------------------------------------------------------------------------- audio


async def transcriptions(request: web.Request) -> web.StreamResponse:
    return await _audio(request, Task.TRANSCRIBE)


async def translations(request: web.Request) -> web.StreamResponse:
    return await _audio(request, Task.TRANSLATE)


async def _audio(request: web.Request, task: Task) -> web.StreamResponse:
    _gate(request)
    deps, config = request.app[DEPS], request.app[CONFIG]
    route = request.path.removeprefix("/")
    try:
        form = await receive_form(
            request,
            spool_dir=config.spool_dir,
            max_bytes=config.max_upload_bytes,
            idle_seconds=config.upload_idle_seconds,
        )
    except OpenAIError as exc:
        log.info("upload_rejected", route=route, status=exc.status, reason=exc.message, client=request.remote)
        raise
    request.app[METRICS].upload_received(form.file.size, form.file.seconds)
    pcm: Path | None = None
    handed_over = admitted = False
    try:
        params = parse_request(form, task)
        if task == Task.TRANSLATE and (refusal := translation_refusal(deps.settings.whisper_model)):
            raise OpenAIError(400, f"cannot translate: {refusal}", param="model", code="model_not_supported")
        if form.file.size == 0:
            raise OpenAIError(400, f"the file {form.file.filename!r} is empty", param=FILE_FIELD)
        key = content_key(form.file.sha256, params)
        stored = await deps.queue.find_result(key)
        admitted = stored is not None
        if stored is not None:
            log.info("openai_answered_from_result", job_id=stored.id, route=route, bytes=form.file.size)
            return _job_answer(stored, params)
        async with deps.events.subscribe() as events:
            job = await deps.queue.find_live(key)
            created = False
            if job is None:
                pcm = config.spool_dir / f"{form.file.path.name}.pcm"
                duration = await _decode(
                    form, pcm, deps.settings.preferred_audio_languages, timeout=config.max_wait_seconds
                )
                result = await deps.queue.enqueue(_new_job(request, form, params, key, pcm, duration))
                job, created = result.job, result.created
                handed_over = created
                if created:
                    deps.pool.wake()
            admitted = True
            log.info(
                "openai_request_queued" if created else "openai_request_attached",
                job_id=job.id,
                route=route,
                model=params.model,
                response_format=params.response_format,
                language=params.language,
                bytes=form.file.size,
                intake_seconds=round(form.file.seconds, 3),
            )
            return await _wait_and_answer(request, config, job.id, events, params)
    except OpenAIError as exc:
        if not admitted:  # the job's own end (a timeout, a cancellation) is logged where it happens
            log.info("upload_rejected", route=route, status=exc.status, reason=exc.message, client=request.remote)
        raise
    finally:
        await asyncio.to_thread(form.file.path.unlink, missing_ok=True)  # the job reads the decoded PCM
        if pcm is not None and not handed_over:
            await asyncio.to_thread(pcm.unlink, missing_ok=True)


async def _decode(
    form: Form,
    dest: Path,
    preferred_languages: list[str],
    *,
    timeout: float,  # noqa: ASYNC109 - ffmpeg's own limit, passed on
) -> float:
    """The upload as 16 kHz mono PCM in `dest` (what a Bazarr upload holds); its duration in seconds.

    ffmpeg runs as a child process, so the event loop goes on serving while it decodes."""
    name = form.file.filename
    try:
        info = await probe_media(form.file.path)
        stream, _ = choose_audio_track(info, preferred_languages)
        audio = await extract_audio(form.file.path, stream.index, dest, timeout=timeout)
    except NoAudioError:
        raise OpenAIError(400, f"the file {name!r} has no audio stream; send audio, or a video with sound") from None
    except (ProbeError, AudioExtractError) as exc:
        if not exc.permanent:
            raise OpenAIError(503, f"cannot read the file {name!r} now ({exc.problem}); try again") from None
        raise OpenAIError(
            400,
            f"the file {name!r} is not audio or video that ffmpeg can read ({exc.problem}); send {_CONTAINERS}",
            param=FILE_FIELD,
        ) from None
    return audio.duration


def _new_job(request: web.Request, form: Form, params: AudioRequest, key: str, pcm: Path, duration: float) -> NewJob:
    deps = request.app[DEPS]
    options: dict[str, object] = {"encode": False}
    if params.prompt is not None:
        options["initial_prompt"] = params.prompt
    return NewJob(
        # Bazarr's source: the same priority (a client is waiting) and the same result retention.
        source=Source.BAZARR,
        task=params.task,
        upload_path=str(pcm),
        content_key=key,
        source_language=params.language,
        target_language=params.target_language,
        quality=deps.settings.quality,
        media_duration=duration,
        options=options,
        details={
            "api": "openai",
            "client": request.remote,
            "file": form.file.filename,
            "bytes": form.file.size,
            "model_requested": params.model,
        },
    )


async def _wait_and_answer(
    request: web.Request, config: ApiConfig, job_id: int, events: asyncio.Queue[Event], params: AudioRequest
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
            log.info("openai_answered", job_id=job_id, state=waited.job.state, keepalives=waited.keepalives)
            return _job_answer(waited.job, params)
        case WaitEnd.TIMED_OUT:
            log.warning("openai_wait_timed_out", job_id=job_id, minutes=minutes)
            raise OpenAIError(
                504, f"job {job_id} has no result after {minutes:g} minutes (MAX_JOB_MINUTES); it goes on, ask again"
            )
        case WaitEnd.SHUTTING_DOWN:
            raise OpenAIError(503, f"Transcriptarr is shutting down; job {job_id} is kept, ask again later")
        case WaitEnd.CLIENT_GONE:
            # The job goes on: the client's retry attaches to it or finds the stored result.
            log.info("openai_client_gone", job_id=job_id, keepalives=waited.keepalives)
            raise OpenAIError(503, f"the client went away; job {job_id} goes on")
        case _:
            raise OpenAIError(500, f"job {job_id} disappeared from the queue; ask again")


def _job_answer(job: Job, params: AudioRequest) -> web.Response:
    """The answer for a finished job, in the format this request asked for."""
    if job.state == JobState.COMPLETED:
        if job.result_text is None:
            raise OpenAIError(500, f"job {job.id} completed without a stored result; ask again")
        try:
            language, cues = load_cues(job.result_text)
        except ValueError as exc:
            raise OpenAIError(500, f"job {job.id}: {exc}") from None
        return answer(
            cues,
            language or job.target_language,
            response_format=params.response_format,
            task=params.task.value,
            duration=job.media_duration,
            granularities=params.granularities,
        )
    if job.state == JobState.CANCELLED:
        # A retry would quietly undo the cancellation.
        raise _no_retry(409, f"job {job.id} was cancelled: {job.error or 'on request'}")
    # A permanent failure is the input's fault; anything else already had its MAX_RETRIES in the queue.
    status = 422 if job.error_permanent else 500
    raise _no_retry(status, f"transcription failed (job {job.id}): {job.error or 'unknown error'}")


def _no_retry(status: int, message: str) -> OpenAIError:
    """OpenAI's clients retry 409 and 5xx by themselves (twice) unless the answer says not to."""
    return OpenAIError(status, message, headers={"x-should-retry": "false"})


def add_routes(app: web.Application) -> None:
    app.router.add_post("/v1/audio/transcriptions", transcriptions)
    app.router.add_post("/v1/audio/translations", translations)
    app.router.add_get("/v1/models", list_models)
    app.router.add_get("/v1/models/{model:.+}", get_model)
