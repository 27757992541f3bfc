"""Conformance with Bazarr's Whisper provider (docs/bazarr-contract.md), over real loopback HTTP.

Every request is made like Bazarr makes it (tests/api/live.py:bazarr_post)
against a real server with real workers and the bundled tiny.en model.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pysubs2
import pytest
import requests
import srt

from tests.acceptance.engine_harness import engine_settings, normalise
from tests.api.conftest import bazarr_jobs, content_key, spool_files, unique
from tests.api.live import LiveService, bazarr_post
from tests.media_factory import fixture_path
from transcriptarr.db.models import JobState

# Seconds on the clock: run alone (`make test` runs `serial` tests after the rest).
pytestmark = pytest.mark.serial

SRT = {"task": "transcribe", "language": "en", "output": "srt", "encode": "false"}
MAX_UPLOAD = 8 * 1024 * 1024


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveService]:
    tmp = tmp_path_factory.mktemp("bazarr")
    (tmp / "library").mkdir()
    settings = engine_settings(tmp, transcriptarr_mode="provider", library_paths=str(tmp / "library"))
    with LiveService(
        settings, keepalive_seconds=0.5, max_upload_bytes=MAX_UPLOAD, path_prefix="/whisper", poll_seconds=1.0
    ) as live:
        yield live


def parses_as_srt(text: str) -> bool:
    """What Bazarr checks: does the body hold a subtitle for a strict parser, or for lenient pysubs2?"""
    if len(pysubs2.SSAFile.from_string(text, format_="srt")):
        return True
    try:
        return bool(list(srt.parse(text)))
    except srt.SRTParseError:
        return False


def assert_error(response: requests.Response, status: int, *words: str) -> None:
    assert response.status_code == status, response.text
    assert response.text.startswith("ERROR: "), response.text
    assert response.text.strip() and not parses_as_srt(response.text)
    for word in words:
        assert word in response.text, response.text


def assert_clean_spool(service: LiveService) -> None:
    """No partial or orphaned upload: every spooled file belongs to a job still queued or running."""
    live = {job.upload_path for job in bazarr_jobs(service) if job.state in (JobState.QUEUED, JobState.PROCESSING)}
    leftovers = [path for path in spool_files(service) if str(path) not in live]
    assert leftovers == []


# --------------------------------------------------------------------------- the three routes


def test_status_answers_version_at_root_and_prefix(service: LiveService) -> None:
    for url in (f"{service.url}/status", f"{service.url}/whisper/status"):
        response = requests.get(url, headers={"User-Agent": "Subliminal/2.1"}, timeout=5)
        assert response.status_code == 200
        assert isinstance(response.json()["version"], str)


def test_transcribe_returns_strict_srt_under_path_prefix(service: LiveService, jfk_pcm: bytes) -> None:
    response = bazarr_post(f"{service.url}/whisper", "asr", jfk_pcm, SRT)
    assert response.status_code == 200, response.text
    assert response.headers["Content-Type"] == "text/plain; charset=utf-8"
    assert response.headers["Asr-Engine"] == "faster_whisper"
    assert response.headers["Content-Disposition"] == 'attachment; filename="audio_file.srt"'
    cues = list(srt.parse(response.text, ignore_errors=False))
    assert cues and cues[0].index == 1
    assert "americans" in normalise(" ".join(cue.content for cue in cues))
    assert_clean_spool(service)


def test_translate_to_english(service: LiveService, jfk_pcm: bytes) -> None:
    audio = unique(jfk_pcm, 1)
    response = bazarr_post(service.url, "asr", audio, {**SRT, "task": "translate"})
    assert response.status_code == 200, response.text
    assert "country" in normalise(response.text)
    [job] = bazarr_jobs(service, content_key(audio, "translate"))
    assert (job.task, job.target_language) == ("translate", "en")


@pytest.mark.parametrize(
    ("output", "content_type", "check"),
    [
        ("vtt", "text/vtt", lambda text: text.startswith("WEBVTT")),
        ("txt", "text/plain", lambda text: "americans" in normalise(text)),
        ("tsv", "text/tab-separated-values", lambda text: text.startswith("start\tend\ttext\n")),
        ("json", "application/json", lambda text: "americans" in normalise(json.loads(text)["text"])),
    ],
)
def test_other_outputs_render_the_same_stored_result(
    service: LiveService, jfk_pcm: bytes, output: str, content_type: str, check: object
) -> None:
    audio = unique(jfk_pcm, 2)
    response = bazarr_post(service.url, "asr", audio, {**SRT, "output": output})
    assert response.status_code == 200, response.text
    assert response.headers["Content-Type"].split(";")[0] == content_type
    assert response.headers["Content-Disposition"] == f'attachment; filename="audio_file.{output}"'
    assert callable(check) and check(response.text)
    # The output format is not part of the work: one job serves every format.
    assert len(bazarr_jobs(service, content_key(audio))) == 1


def test_detect_language_english(service: LiveService, jfk_pcm: bytes) -> None:
    jobs_before = len(bazarr_jobs(service))
    response = bazarr_post(service.url, "detect-language", jfk_pcm, {"encode": "false"})
    assert response.status_code == 200
    answer = response.json()
    assert (answer["language_code"], answer["detected_language"]) == ("en", "english")
    assert 0 < answer["confidence"] <= 1
    assert len(bazarr_jobs(service)) == jobs_before  # a fast path, not a queued job


def test_encode_true_takes_any_container(service: LiveService) -> None:
    flac = fixture_path("jfk.flac").read_bytes()
    detected = bazarr_post(service.url, "detect-language", flac, {"encode": "true"})
    assert detected.json()["language_code"] == "en"
    response = bazarr_post(service.url, "asr", flac, {**SRT, "encode": "true"})
    assert response.status_code == 200, response.text
    assert "americans" in normalise(response.text)
    assert_clean_spool(service)


def test_detect_language_answers_empty_object_for_silence(service: LiveService) -> None:
    silence = b"\x00\x00" * 16_000 * 20
    response = bazarr_post(service.url, "detect-language", silence, {"encode": "false"})
    assert response.status_code == 200
    assert response.text == "{}"


def test_detect_language_answers_empty_object_for_empty_upload(service: LiveService) -> None:
    response = bazarr_post(service.url, "detect-language", b"", {"encode": "false"})
    assert (response.status_code, response.text) == (200, "{}")


def test_no_speech_is_an_error_not_an_empty_subtitle(service: LiveService) -> None:
    silence = b"\x00\x00" * 16_000 * 8
    response = bazarr_post(service.url, "asr", silence, SRT)
    assert_error(response, 422, "no speech")


# --------------------------------------------------------------------------- one job per piece of work


def test_identical_requests_in_a_row_make_one_job(service: LiveService, jfk_pcm: bytes) -> None:
    audio = unique(jfk_pcm, 3)
    bodies = []
    for _ in range(3):
        response = bazarr_post(service.url, "asr", audio, SRT)
        assert response.status_code == 200
        bodies.append(response.text)
    assert bodies[0] == bodies[1] == bodies[2]
    assert len(bazarr_jobs(service, content_key(audio))) == 1
    assert_clean_spool(service)


def test_concurrent_identical_requests_make_one_job(service: LiveService, jfk_pcm: bytes) -> None:
    audio = unique(jfk_pcm, 4)
    answers: list[requests.Response] = []
    threads = [
        threading.Thread(target=lambda: answers.append(bazarr_post(service.url, "asr", audio, SRT))) for _ in range(3)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert [r.status_code for r in answers] == [200, 200, 200]
    assert len({r.text for r in answers}) == 1
    jobs = bazarr_jobs(service, content_key(audio))
    assert len(jobs) == 1 and jobs[0].state == JobState.COMPLETED
    assert_clean_spool(service)


def test_a_different_language_is_different_work(service: LiveService, jfk_pcm: bytes) -> None:
    audio = unique(jfk_pcm, 5)
    assert bazarr_post(service.url, "asr", audio, SRT).status_code == 200
    bazarr_post(service.url, "asr", audio, {**SRT, "language": "de"})
    assert len(bazarr_jobs(service, content_key(audio))) == 1
    assert len(bazarr_jobs(service, content_key(audio, language="de"))) == 1


# --------------------------------------------------------------------------- long jobs


def test_transcription_longer_than_the_read_timeout_succeeds(service: LiveService, long_pcm: bytes) -> None:
    two_minutes = long_pcm + long_pcm  # a minute took an idle 2-core machine just 2.0 s: too close to the bound
    started = time.monotonic()
    response = bazarr_post(service.url, "asr", two_minutes, SRT, read_timeout=1)
    took = time.monotonic() - started
    assert response.status_code == 200, response.text
    assert "americans" in normalise(response.text)
    # Otherwise this proves nothing about the keepalive: the wait must outlast the read timeout twice over.
    assert took > 2, f"the transcription took only {took:.1f} s; use longer audio"


def test_without_keepalive_the_read_timeout_fires(tmp_path: Path, long_pcm: bytes) -> None:
    """The control experiment: the same request with no interim responses times out in the client."""
    settings = engine_settings(tmp_path, transcriptarr_mode="provider")
    with LiveService(settings, keepalive_seconds=3600) as live, pytest.raises(requests.exceptions.ReadTimeout):
        bazarr_post(live.url, "asr", unique(long_pcm, 1), SRT, read_timeout=1)


def test_restart_between_identical_requests_answers_from_stored_result(tmp_path: Path, jfk_pcm: bytes) -> None:
    settings = engine_settings(tmp_path, transcriptarr_mode="provider")
    with LiveService(settings) as first:
        before = bazarr_post(first.url, "asr", jfk_pcm, SRT)
        assert before.status_code == 200
    with LiveService(settings, workers=False) as second:  # no worker: only the stored result can answer
        started = time.monotonic()
        after = bazarr_post(second.url, "asr", jfk_pcm, SRT)
        assert time.monotonic() - started < 3
        assert (after.status_code, after.text) == (200, before.text)
        assert len(bazarr_jobs(second, content_key(jfk_pcm))) == 1


# --------------------------------------------------------------------------- bad input


def _post_raw(service: LiveService, head: bytes, body: bytes = b"") -> tuple[int, str]:
    """Send bytes as they are (for what requests refuses to send) and read the answer."""
    with socket.create_connection(("127.0.0.1", service.port), timeout=30) as sock:
        sock.sendall(head + body)
        data = b""
        while b"\r\n\r\n" not in data or len(data.split(b"\r\n\r\n", 1)[1]) < _length(data):
            chunk = sock.recv(65536)
            if not chunk:
                break
            data += chunk
    status_line, rest = data.split(b"\r\n", 1)
    return int(status_line.split()[1]), rest.split(b"\r\n\r\n", 1)[1].decode()


def _length(data: bytes) -> int:
    for line in data.split(b"\r\n\r\n", 1)[0].split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            return int(line.split(b":")[1])
    return 0


@pytest.mark.parametrize(
    ("params", "audio", "status", "words"),
    [
        (SRT, b"", 400, ["empty"]),
        (SRT, b"\x01\x02\x03", 400, ["odd"]),
        ({**SRT, "language": "klingon"}, b"\x00\x00", 400, ["unknown language"]),
        ({**SRT, "task": "summarise"}, b"\x00\x00", 400, ["unknown task"]),
        ({**SRT, "output": "docx"}, b"\x00\x00", 400, ["unknown output"]),
        ({**SRT, "encode": "perhaps"}, b"\x00\x00", 400, ["boolean"]),
    ],
)
def test_bad_input_is_a_4xx_error_text(
    service: LiveService, params: dict[str, str], audio: bytes, status: int, words: list[str]
) -> None:
    assert_error(bazarr_post(service.url, "asr", audio, params), status, *words)
    assert_clean_spool(service)


def test_garbage_with_encode_true_fails_with_the_probe_reason(service: LiveService) -> None:
    response = bazarr_post(service.url, "asr", b"this is not a media file" * 100, {**SRT, "encode": "true"})
    assert_error(response, 422, "transcription failed", "cannot probe")
    assert_clean_spool(service)


def test_missing_audio_file_part(service: LiveService) -> None:
    response = requests.post(
        f"{service.url}/asr", params=SRT, files={"audio": b"\x00\x00"}, headers={"User-Agent": "Subliminal/2.1"}
    )
    assert_error(response, 400, "audio_file")


def test_body_that_is_not_multipart(service: LiveService) -> None:
    response = requests.post(f"{service.url}/asr", params=SRT, json={"audio_file": "x"})
    assert_error(response, 400, "multipart")


def test_malformed_multipart(service: LiveService) -> None:
    body = b'--b0undary\r\nContent-Disposition: form-data; name="audio_file"\r\n\r\n\x00\x00 and no closing boundary'
    head = (
        f"POST /asr?encode=false&language=en&output=srt HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
        f"Content-Type: multipart/form-data; boundary=b0undary\r\nContent-Length: {len(body)}\r\n\r\n"
    ).encode()
    status, text = _post_raw(service, head, body)
    assert status == 400 and text.startswith("ERROR: malformed multipart"), text
    assert_clean_spool(service)


def test_huge_declared_content_length_is_refused_before_reading(service: LiveService) -> None:
    head = (
        b"POST /asr?encode=false&language=en&output=srt HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
        b"Content-Type: multipart/form-data; boundary=b0undary\r\nContent-Length: 10000000000000\r\n\r\n"
    )
    status, text = _post_raw(service, head)
    assert status == 413 and text.startswith("ERROR: ") and "MAX_UPLOAD_MB" in text, text


def test_upload_over_the_limit_is_refused_and_removed(service: LiveService) -> None:
    response = bazarr_post(service.url, "asr", b"\x00" * (MAX_UPLOAD + 4096), SRT)
    assert_error(response, 413, "MAX_UPLOAD_MB")
    assert_clean_spool(service)


# --------------------------------------------------------------------------- video_file


def test_video_file_with_a_subtitle_we_wrote_is_answered_from_it(service: LiveService) -> None:
    library = service.settings.library_paths[0]
    movie = library / "Movie (2020).mkv"
    movie.write_bytes(b"not really a film")
    subtitle = library / "Movie (2020).en.srt"
    subtitle.write_text("1\n00:00:01,000 --> 00:00:02,500\nWritten earlier.\n\n", encoding="utf-8")
    service.call(lambda parts: parts.subtitles.record(subtitle, media_path=str(movie), language="en", job_id=None))
    # Bazarr's path may be a symlink to the library file: resolved before the look-up.
    alias = library.parent / "alias.mkv"
    alias.symlink_to(movie)
    audio = b"\x00\x00" * 16_000
    response = bazarr_post(service.url, "asr", audio, {**SRT, "video_file": str(alias)})
    assert response.status_code == 200, response.text
    assert [cue.content for cue in srt.parse(response.text)] == ["Written earlier."]
    assert bazarr_jobs(service, content_key(audio, video=str(alias))) == []


def test_video_file_outside_the_library_is_not_read(service: LiveService, tmp_path: Path) -> None:
    outside = tmp_path / "Other.mkv"
    outside.write_bytes(b"x")
    (tmp_path / "Other.en.srt").write_text("1\n00:00:01,000 --> 00:00:02,000\nSecret.\n\n", encoding="utf-8")
    service.call(
        lambda parts: parts.subtitles.record(
            tmp_path / "Other.en.srt", media_path=str(outside), language="en", job_id=1
        )
    )
    response = bazarr_post(service.url, "asr", b"\x00\x00" * 16_000, {**SRT, "video_file": str(outside)})
    assert "Secret" not in response.text
    assert_error(response, 422, "no speech")  # transcribed instead: silence


# --------------------------------------------------------------------------- modes, networks, waiting


def test_standalone_mode_answers_404_with_a_hint(tmp_path: Path, jfk_pcm: bytes) -> None:
    settings = engine_settings(tmp_path, transcriptarr_mode="standalone")
    with LiveService(settings, workers=False) as live:
        for response in (
            bazarr_post(live.url, "asr", jfk_pcm, SRT),
            bazarr_post(live.url, "detect-language", jfk_pcm, {"encode": "false"}),
            requests.get(f"{live.url}/status", timeout=5),
        ):
            assert_error(response, 404, "TRANSCRIPTARR_MODE=provider")


def test_client_outside_the_allowed_networks_is_refused(tmp_path: Path, jfk_pcm: bytes) -> None:
    settings = engine_settings(tmp_path, transcriptarr_mode="standalone,provider")
    with LiveService(settings, workers=False, allowed_networks=("10.0.0.0/8",)) as live:
        assert_error(bazarr_post(live.url, "asr", jfk_pcm, SRT), 403, "PROVIDER_ALLOWED_NETWORKS")
    with LiveService(settings, workers=False, allowed_networks=("10.0.0.0/8", "127.0.0.0/8")) as live:
        assert requests.get(f"{live.url}/status", timeout=5).status_code == 200


def test_waiting_longer_than_max_job_minutes_is_504_and_the_job_goes_on(tmp_path: Path, jfk_pcm: bytes) -> None:
    settings = engine_settings(tmp_path, transcriptarr_mode="provider")
    with LiveService(settings, workers=False, keepalive_seconds=0.3, max_wait_seconds=1.5) as live:
        response = bazarr_post(live.url, "asr", jfk_pcm, SRT, read_timeout=1)
        assert_error(response, 504, "MAX_JOB_MINUTES")
        [job] = bazarr_jobs(live, content_key(jfk_pcm))
        assert job.state == JobState.QUEUED


def test_client_disconnect_does_not_cancel_the_job(tmp_path: Path, jfk_pcm: bytes) -> None:
    settings = engine_settings(tmp_path, transcriptarr_mode="provider")
    with LiveService(settings, workers=False, keepalive_seconds=1.5) as live:
        with pytest.raises(requests.exceptions.ReadTimeout):
            bazarr_post(live.url, "asr", jfk_pcm, SRT, read_timeout=1)
        # Nothing to wait on: let one keepalive (1.5 s) find the client gone, then check the job survived.
        time.sleep(2)
        [job] = bazarr_jobs(live, content_key(jfk_pcm))
        assert job.state == JobState.QUEUED and Path(str(job.upload_path)).is_file()


def test_shutdown_answers_a_waiting_request(tmp_path: Path, jfk_pcm: bytes) -> None:
    settings = engine_settings(tmp_path, transcriptarr_mode="provider")
    answers: list[requests.Response] = []
    with LiveService(settings, workers=False, keepalive_seconds=0.3) as live:
        waiting = threading.Thread(target=lambda: answers.append(bazarr_post(live.url, "asr", jfk_pcm, SRT)))
        waiting.start()
        deadline = time.monotonic() + 30
        while not bazarr_jobs(live):
            assert time.monotonic() < deadline, "the request was never queued"
            time.sleep(0.1)
    waiting.join(30)
    [response] = answers
    assert_error(response, 503, "shutting down")


# --------------------------------------------------------------------------- PATH_MAPPINGS


def test_video_file_as_bazarr_names_it_is_mapped_before_the_library_look_up(tmp_path: Path) -> None:
    """Bazarr in another container calls the library /tv; PATH_MAPPINGS says it is LIBRARY_PATHS here."""
    library = tmp_path / "library"
    (library / "Show" / "Season 01").mkdir(parents=True)
    episode = library / "Show" / "Season 01" / "Show - S01E01.mkv"
    episode.write_bytes(b"not really an episode")
    subtitle = episode.with_suffix(".en.srt")
    subtitle.write_text("1\n00:00:01,000 --> 00:00:02,500\nWritten for the episode.\n\n", encoding="utf-8")
    settings = engine_settings(
        tmp_path, transcriptarr_mode="provider", library_paths=str(library), path_mappings=f"/tv:{library}"
    )
    audio = b"\x00\x00" * 16_000
    with LiveService(settings, workers=False, keepalive_seconds=0.5, max_wait_seconds=1) as live:
        live.call(lambda parts: parts.subtitles.record(subtitle, media_path=str(episode), language="en", job_id=None))
        response = bazarr_post(live.url, "asr", audio, {**SRT, "video_file": "/tv/Show/Season 01/Show - S01E01.mkv"})
        assert response.status_code == 200, response.text
        assert [cue.content for cue in srt.parse(response.text)] == ["Written for the episode."]
        assert bazarr_jobs(live) == []
        # Another episode has no subtitle: its audio is queued (and, with no workers, waits), keyed on
        # Bazarr's own name, so that Bazarr's retry finds the job whatever PATH_MAPPINGS says by then.
        other = "/tv/Show/Season 01/Show - S01E02.mkv"
        assert_error(bazarr_post(live.url, "asr", audio, {**SRT, "video_file": other}), 504, "MAX_JOB_MINUTES")
        [job] = bazarr_jobs(live)
        assert job.content_key == content_key(audio, video=other)
