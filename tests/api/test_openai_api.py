"""The OpenAI-compatible routes (/v1/*) with OpenAI's own Python client, over real loopback HTTP.

A real service (database, workers, the bundled tiny.en model with QUALITY=fast,
so decoding is deterministic) on 127.0.0.1; every call is made the way Open
WebUI's or a script's `openai` client makes it: `OpenAI(base_url=.../v1,
api_key=KEY)`. Audio is JFK's speech (tests/data/jfk.flac) re-encoded by ffmpeg
into the containers clients send, and espeak-ng speech for the long job.
"""

from __future__ import annotations

import asyncio
import hashlib
import io
import threading
import time
import wave
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import openai
import pytest
import requests
import srt
from openai import OpenAI

from tests.acceptance.engine_harness import engine_settings, normalise
from tests.api.conftest import spool_files, unique
from tests.api.live import LiveService
from tests.media_factory import fixture_path, make_video, run_tool, speak
from tests.polling import eventually
from transcriptarr.api.openai_api import AudioRequest, content_key
from transcriptarr.db.models import Job, JobState, Task

# Seconds on the clock: run alone (`make test` runs `serial` tests after the rest).
pytestmark = pytest.mark.serial

KEY = "openai-test-key"
MAX_UPLOAD = 4 * 1024 * 1024
# What tiny.en hears in the JFK clip at temperature 0.
JFK_WORDS = ("fellow americans", "your country")


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveService]:
    tmp = tmp_path_factory.mktemp("openai")
    settings = engine_settings(tmp, transcriptarr_mode="provider", api_key=KEY, quality="fast")
    with LiveService(settings, keepalive_seconds=0.2, max_upload_bytes=MAX_UPLOAD, poll_seconds=1.0) as live:
        yield live


@pytest.fixture(scope="module")
def containers(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The first 5 s of JFK's speech ("And so, my fellow Americans") in every container OpenAI lists, and a video."""
    folder = tmp_path_factory.mktemp("containers")
    source = fixture_path("jfk.flac")
    codecs = {
        "flac": "flac",
        "mp3": "libmp3lame",
        "m4a": "aac",
        "wav": "pcm_s16le",
        "webm": "libopus",
        "ogg": "libvorbis",
    }
    made = {}
    for extension, codec in codecs.items():
        dest = folder / f"jfk.{extension}"
        run_tool(["ffmpeg", "-nostdin", "-v", "error", "-y", "-i", str(source), "-t", "5", "-c:a", codec, str(dest)])
        made[extension] = dest
    made["mp4"] = make_video(folder / "jfk.mp4", [(made["wav"], "eng", True)])
    return made


JFK = fixture_path("jfk.flac")


def client(service: LiveService, key: str = KEY, **options: Any) -> OpenAI:
    return OpenAI(base_url=f"{service.url}/v1", api_key=key, max_retries=0, **options)


def wav(pcm: bytes) -> bytes:
    """16 kHz mono PCM in a WAV container, as a browser or a script would upload it."""
    out = io.BytesIO()
    with wave.open(out, "wb") as handle:
        handle.setnchannels(1)
        handle.setsampwidth(2)
        handle.setframerate(16_000)
        handle.writeframes(pcm)
    return out.getvalue()


def jobs_of(service: LiveService, audio: bytes | Path, *, task: str = "transcribe", **fields: Any) -> list[Job]:
    """The jobs of this upload: same bytes + task + language + prompt (the queue's content key)."""
    data = audio.read_bytes() if isinstance(audio, Path) else audio
    params = AudioRequest(
        task=Task(task),
        model="whisper-1",
        language=fields.get("language"),
        prompt=fields.get("prompt"),
        response_format="json",
        temperature=0.0,
        granularities=frozenset(),
    )
    key = content_key(hashlib.sha256(data).hexdigest(), params)

    async def work(parts: Any) -> list[Job]:
        return [job for job in await service.parts.queue.list_jobs(limit=10_000) if job.content_key == key]

    return service.call(work)


def assert_clean_spool(service: LiveService) -> None:
    """Neither the upload nor its decoded PCM is left once the request is answered."""

    async def live(parts: Any) -> set[str]:
        jobs = await service.parts.queue.list_jobs(states=[JobState.QUEUED, JobState.PROCESSING], limit=10_000)
        return {job.upload_path for job in jobs if job.upload_path}

    running = service.call(live)
    assert [path for path in spool_files(service) if str(path) not in running] == []


def says_jfk(text: str) -> bool:
    return all(words in normalise(text) for words in JFK_WORDS)


# --------------------------------------------------------------------------- models


def test_models_list_the_alias_and_the_real_model(service: LiveService) -> None:
    models = client(service).models.list()
    assert [model.id for model in models.data] == ["whisper-1", "bundled:tiny.en"]
    assert client(service).models.retrieve("whisper-1").owned_by == "transcriptarr"
    assert client(service).models.retrieve("bundled:tiny.en").id == "bundled:tiny.en"


def test_an_unknown_model_id_is_not_found(service: LiveService) -> None:
    with pytest.raises(openai.NotFoundError) as caught:
        client(service).models.retrieve("gpt-nope")
    assert caught.value.code == "model_not_found"
    assert "gpt-nope" in caught.value.message and "whisper-1" in caught.value.message


# --------------------------------------------------------------------------- transcriptions


@pytest.mark.parametrize("container", ["flac", "mp3", "m4a", "wav", "webm", "ogg", "mp4"])
def test_every_container_is_transcribed(service: LiveService, containers: dict[str, Path], container: str) -> None:
    path = containers[container]
    with path.open("rb") as handle:
        result = client(service).audio.transcriptions.create(model="whisper-1", file=handle)
    assert "fellow americans" in normalise(result.text), result.text
    assert result.usage is not None and result.usage.type == "duration" and result.usage.seconds in (5, 6)
    [job] = jobs_of(service, path)
    assert (job.source, job.task, job.options) == ("bazarr", "transcribe", {"encode": False})
    # The job read the upload decoded to PCM, which is gone with its job.
    assert job.upload_path is not None and job.upload_path.endswith(".pcm") and not Path(job.upload_path).exists()
    assert_clean_spool(service)


def test_text_format_is_the_plain_transcript(service: LiveService) -> None:
    text = client(service).audio.transcriptions.create(model="whisper-1", file=JFK, response_format="text")
    assert isinstance(text, str) and text.endswith("\n") and "\n" not in text.rstrip("\n")
    assert says_jfk(text)


def test_srt_format_parses_strictly(service: LiveService) -> None:
    body = client(service).audio.transcriptions.create(model="whisper-1", file=JFK, response_format="srt")
    cues = list(srt.parse(body, ignore_errors=False))
    assert cues and cues[0].index == 1 and cues[-1].end.total_seconds() <= 11.1
    assert says_jfk(" ".join(cue.content for cue in cues))


def test_vtt_format(service: LiveService) -> None:
    body = client(service).audio.transcriptions.create(model="whisper-1", file=JFK, response_format="vtt")
    assert body.startswith("WEBVTT") and " --> " in body
    assert says_jfk(body)


def test_verbose_json_has_language_duration_and_segments(service: LiveService) -> None:
    result = client(service).audio.transcriptions.create(model="whisper-1", file=JFK, response_format="verbose_json")
    assert (result.language, round(result.duration)) == ("english", 11)
    assert says_jfk(result.text) and result.words is None
    assert result.segments
    assert [segment.id for segment in result.segments] == list(range(len(result.segments)))
    assert all(0 <= s.start < s.end <= 11.1 and s.text and s.avg_logprob <= 0 for s in result.segments)
    assert says_jfk(" ".join(segment.text for segment in result.segments))


@pytest.mark.parametrize(
    ("granularities", "segments"), [(["word"], False), (["word", "segment"], True), (["segment"], True)]
)
def test_word_and_segment_timestamps(service: LiveService, granularities: list[Any], segments: bool) -> None:
    result = client(service).audio.transcriptions.create(
        model="whisper-1",
        file=JFK,
        response_format="verbose_json",
        timestamp_granularities=granularities,
    )
    assert (result.segments is not None) == segments
    if "word" not in granularities:
        assert result.words is None
        return
    assert result.words
    words = [word.word for word in result.words]
    assert "Americans" in " ".join(words) and all(word == word.strip() for word in words)
    starts = [word.start for word in result.words]
    assert starts == sorted(starts) and all(w.start <= w.end <= 11.1 for w in result.words)


def test_three_formats_of_the_same_audio_are_one_job(service: LiveService, jfk_pcm: bytes) -> None:
    audio = wav(unique(jfk_pcm, 11))
    answers: dict[str, Any] = {}

    def ask(response_format: Any) -> None:
        answers[response_format] = client(service).audio.transcriptions.create(
            model="whisper-1", file=("three.wav", audio), response_format=response_format
        )

    threads = [threading.Thread(target=ask, args=(fmt,)) for fmt in ("json", "srt", "vtt")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert set(answers) == {"json", "srt", "vtt"}
    assert says_jfk(answers["json"].text)
    assert answers["srt"].startswith("1\n") and answers["vtt"].startswith("WEBVTT")
    [job] = jobs_of(service, audio)
    assert job.state == JobState.COMPLETED
    # Later, a fourth format: answered from the stored result, still the one job.
    started = time.monotonic()
    text = client(service).audio.transcriptions.create(
        model="whisper-1", file=("three.wav", audio), response_format="text"
    )
    assert time.monotonic() - started < 3 and text.strip() == answers["json"].text
    assert [j.id for j in jobs_of(service, audio)] == [job.id]
    assert_clean_spool(service)


def test_prompt_language_and_temperature_go_with_the_job(service: LiveService, jfk_pcm: bytes) -> None:
    audio = wav(unique(jfk_pcm, 12))
    result = client(service).audio.transcriptions.create(
        model="gpt-4o-mini-transcribe",  # any model name is served by WHISPER_MODEL
        file=("prompted.wav", audio),
        prompt="President Kennedy's inaugural address.",
        language="en",
        temperature=0.0,
    )
    assert says_jfk(result.text)
    prompt = "President Kennedy's inaugural address."
    [job] = jobs_of(service, audio, language="en", prompt=prompt)
    assert (job.options["initial_prompt"], job.source_language) == (prompt, "en")
    # The prompt is part of the work: the same audio without it is another job.
    client(service).audio.transcriptions.create(model="whisper-1", file=("prompted.wav", audio), language="en")
    [other] = jobs_of(service, audio, language="en")
    assert other.id != job.id and "initial_prompt" not in other.options


def test_home_assistant_request(service: LiveService, jfk_pcm: bytes) -> None:
    """The form Home Assistant's OpenAI STT integration (einToast/openai_stt_ha) posts with httpx: its microphone's
    PCM as WAV, its language as a BCP 47 tag, an empty prompt, the temperature as text; it reads error.message."""
    audio = wav(unique(jfk_pcm, 14))
    form = {
        "file": ("whisper_audio.wav", audio, "audio/wav"),
        "model": (None, "gpt-4o-mini-transcribe"),
        "language": (None, "en-US"),
        "prompt": (None, ""),
        "temperature": (None, "0"),
        "response_format": (None, "json"),
    }
    answer = requests.post(
        f"{service.url}/v1/audio/transcriptions", files=form, headers={"Authorization": f"Bearer {KEY}"}, timeout=60
    )
    assert answer.status_code == 200, answer.text
    assert says_jfk(answer.json()["text"])
    [job] = jobs_of(service, audio, language="en")
    assert job.source_language == "en" and "initial_prompt" not in job.options
    form["language"] = (None, "xx-YY")
    refused = requests.post(
        f"{service.url}/v1/audio/transcriptions", files=form, headers={"Authorization": f"Bearer {KEY}"}, timeout=60
    )
    assert refused.status_code == 400 and "'xx-YY'" in refused.json()["error"]["message"]


def test_silence_is_an_empty_transcript(service: LiveService) -> None:
    silence = wav(b"\x00\x00" * 16_000 * 4)
    assert client(service).audio.transcriptions.create(model="whisper-1", file=("silence.wav", silence)).text == ""
    srt_body = client(service).audio.transcriptions.create(
        model="whisper-1", file=("silence.wav", silence), response_format="srt"
    )
    assert srt_body == ""
    assert len(jobs_of(service, silence)) == 1


def test_a_job_longer_than_the_read_timeout_is_kept_alive(service: LiveService, long_pcm: bytes) -> None:
    """Interim 100 Continue responses restart the client's read timeout (1 s here) while the job runs."""
    two_minutes = long_pcm + long_pcm  # a minute took an idle 2-core machine just 2.0 s: too close to the bound
    started = time.monotonic()
    result = client(service, timeout=1.0).audio.transcriptions.create(
        model="whisper-1", file=("long.wav", wav(two_minutes)), response_format="verbose_json"
    )
    took = time.monotonic() - started
    assert "americans" in normalise(result.text) and result.duration > 100
    # Otherwise this proves nothing about the keepalive: the wait must outlast the read timeout twice over.
    assert took > 2, f"the transcription took only {took:.1f} s; use longer audio"


# --------------------------------------------------------------------------- errors


def test_a_wrong_key_is_an_authentication_error(service: LiveService) -> None:
    with pytest.raises(openai.AuthenticationError) as caught:
        client(service, key="wrong").audio.transcriptions.create(model="whisper-1", file=JFK)
    assert caught.value.code == "invalid_api_key" and "Bearer" in caught.value.message
    with pytest.raises(openai.AuthenticationError):
        client(service, key="wrong").models.list()
    bare = requests.get(f"{service.url}/v1/models", timeout=10)
    assert bare.status_code == 401
    assert bare.json() == {
        "error": {
            "message": "missing or wrong API key: send API_KEY as 'Authorization: Bearer <key>'",
            "type": "invalid_request_error",
            "param": None,
            "code": "invalid_api_key",
        }
    }
    # The service's own header works here too.
    assert requests.get(f"{service.url}/v1/models", headers={"X-Api-Key": KEY}, timeout=10).status_code == 200


@pytest.mark.parametrize(
    ("field", "value", "says"),
    [
        ("response_format", "xml", "use one of json, text, srt, verbose_json, vtt"),
        ("response_format", "diarized_json", "not supported"),
        ("language", "klingon", "ISO-639-1"),
        ("temperature", 1.5, "between 0 and 1"),
        ("timestamp_granularities", ["line"], "word, segment or both"),
    ],
)
def test_a_bad_field_is_a_bad_request(service: LiveService, field: str, value: Any, says: str) -> None:
    create: Callable[..., Any] = client(service).audio.transcriptions.create
    with pytest.raises(openai.BadRequestError) as caught:
        create(model="whisper-1", file=JFK, **{field: value})
    assert caught.value.param == field and says in caught.value.message
    body = caught.value.body
    assert isinstance(body, dict) and says in body["message"]
    assert (body["type"], body["param"], body["code"]) == ("invalid_request_error", field, None)
    assert_clean_spool(service)


def test_a_file_that_is_not_audio_is_a_bad_request(service: LiveService) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        client(service).audio.transcriptions.create(model="whisper-1", file=("notes.txt", b"not audio at all\n" * 50))
    message = caught.value.message
    assert "'notes.txt'" in message and "ffmpeg" in message and "mp3" in message
    assert caught.value.param == "file"
    assert jobs_of(service, b"not audio at all\n" * 50) == []
    assert_clean_spool(service)


def test_an_empty_file_is_a_bad_request(service: LiveService) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        client(service).audio.transcriptions.create(model="whisper-1", file=("empty.mp3", b""))
    assert "'empty.mp3' is empty" in caught.value.message
    assert_clean_spool(service)


def test_a_file_above_max_upload_is_413(service: LiveService) -> None:
    with pytest.raises(openai.APIStatusError) as caught:
        client(service).audio.transcriptions.create(model="whisper-1", file=("big.wav", b"\x00" * (MAX_UPLOAD + 1)))
    assert caught.value.status_code == 413
    assert "MAX_UPLOAD_MB=4 MiB" in caught.value.message and caught.value.param == "file"
    assert_clean_spool(service)


def test_a_form_without_a_file_is_a_bad_request(service: LiveService) -> None:
    answer = requests.post(
        f"{service.url}/v1/audio/transcriptions",
        files={"model": (None, "whisper-1")},
        headers={"Authorization": f"Bearer {KEY}"},
        timeout=10,
    )
    assert answer.status_code == 400
    assert answer.json()["error"]["message"] == "no 'file' part in the form; send the audio as the 'file' field"


@pytest.mark.filterwarnings("ignore:deprecated:DeprecationWarning")  # the openai package marks translations so
def test_translation_is_refused_by_an_english_only_model(service: LiveService) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        client(service).audio.translations.create(model="whisper-1", file=JFK)
    assert "English-only" in caught.value.message and "WHISPER_MODEL" in caught.value.message
    assert caught.value.code == "model_not_supported"
    assert_clean_spool(service)


@pytest.mark.parametrize(
    ("method", "path", "status"),
    [("GET", "/v1/audio/transcriptions", 405), ("POST", "/v1/chat/completions", 404), ("GET", "/v1/nope", 404)],
)
def test_unknown_routes_answer_in_openai_shape(service: LiveService, method: str, path: str, status: int) -> None:
    answer = requests.request(method, f"{service.url}{path}", headers={"Authorization": f"Bearer {KEY}"}, timeout=10)
    assert answer.status_code == status
    error = answer.json()["error"]
    assert path in error["message"] and error["type"] == "invalid_request_error"


def test_provider_mode_off_is_not_found(tmp_path: Path) -> None:
    settings = engine_settings(tmp_path, transcriptarr_mode="standalone")
    with LiveService(settings, workers=False) as live, pytest.raises(openai.NotFoundError) as caught:
        client(live).models.list()
    assert "TRANSCRIPTARR_MODE=provider" in caught.value.message


def test_a_cancelled_job_is_409_and_not_retried_by_the_client(tmp_path: Path, jfk_pcm: bytes) -> None:
    settings = engine_settings(tmp_path, transcriptarr_mode="provider", api_key=KEY)
    audio = wav(unique(jfk_pcm, 13))
    failures: list[openai.APIStatusError] = []

    def ask() -> None:
        patient = OpenAI(base_url=f"{live.url}/v1", api_key=KEY)  # the default: 2 retries of a 409 or 5xx
        try:
            patient.audio.transcriptions.create(model="whisper-1", file=("cancel.wav", audio))
        except openai.APIStatusError as exc:
            failures.append(exc)

    with LiveService(settings, workers=False, keepalive_seconds=0.2, poll_seconds=0.2) as live:
        asker = threading.Thread(target=ask)
        asker.start()
        asyncio.run(eventually(lambda: jobs_of(live, audio), "the upload to be queued"))
        [job] = jobs_of(live, audio)
        live.call(lambda parts: parts.queue.cancel(job.id, "cancelled by the test"))
        asker.join(60)
        [failure] = failures
        assert isinstance(failure, openai.ConflictError) and "cancelled by the test" in failure.message
        assert failure.response.headers["x-should-retry"] == "false"
        # A retry would have queued the same work again.
        assert [j.id for j in jobs_of(live, audio)] == [job.id]
        assert spool_files(live) == []


# --------------------------------------------------------------------------- translation


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore:deprecated:DeprecationWarning")  # the openai package marks translations so
def test_translation_with_a_multilingual_model(tmp_path: Path) -> None:
    spanish = speak("Buenos días. Hoy hace buen tiempo y vamos al parque.", tmp_path / "es.wav", voice="es")
    settings = engine_settings(tmp_path, transcriptarr_mode="provider", whisper_model="bundled:base", quality="fast")
    with LiveService(settings, keepalive_seconds=0.5) as live:
        result = client(live).audio.translations.create(model="whisper-1", file=spanish, response_format="verbose_json")
        assert result.language == "english", result
        assert "good morning" in normalise(result.text) and "park" in normalise(result.text), result.text
        [job] = jobs_of(live, spanish, task="translate")
        assert (job.task, job.source_language, job.target_language) == ("translate", "es", "en")
        # Another format of the same translation: the stored result, no second job.
        text = client(live).audio.translations.create(model="whisper-1", file=spanish, response_format="text")
        assert text.strip() == result.text
        assert len(jobs_of(live, spanish, task="translate")) == 1
