"""Bazarr asks for one track and uploads another: the request's `video_file` gets the right one transcribed.

Bazarr's whisperai provider (custom_libs/subliminal_patch/providers/whisperai.py,
`encode_audio_stream`) builds its ffmpeg command with ffmpeg-python and puts
`-map 0:m:language:<lang>` in the global arguments, which ffmpeg-python writes
after the output: ffmpeg ignores it and uploads the audio stream it picks by itself.
`bazarr_upload` builds that command the same way, so the tests send exactly what
Bazarr sends.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import ffmpeg
import pytest

from tests.acceptance.engine_harness import engine_settings, normalise
from tests.api.conftest import bazarr_jobs, content_key
from tests.api.live import LiveService, bazarr_post
from tests.media_factory import fixture_path, make_tone, make_video, run_tool, speak
from transcriptarr.db.models import JobState
from transcriptarr.media.probe import AudioStream, MediaInfo, probe_media_sync
from transcriptarr.media.tracks import ffmpeg_default_audio, track_for_language

GERMAN = "Guten Morgen. Heute ist das Wetter sehr schön, und wir gehen in den Garten."
BAZARR_VIDEO = "/bazarr/media/Film (2020)/Film (2020).mkv"


def bazarr_upload(video: Path, stream_language: str | None) -> bytes:
    """The audio Bazarr uploads: its own ffmpeg-python calls (`stream_language` is its ISO 639-2/B code)."""
    lang_map = f"0:m:language:{stream_language}" if stream_language else ""
    command = (
        ffmpeg.input(str(video), threads=0)
        .output("-", format="s16le", acodec="pcm_s16le", ac=1, ar=16000, af="aresample=async=1")
        .global_args("-map", lang_map)
        .compile(cmd=["ffmpeg", "-nostdin"])
    )
    assert command[-3:] == ["-", "-map", lang_map], "the -map comes after the output, as in Bazarr"
    done = subprocess.run(command, capture_output=True, check=True)
    return done.stdout


def stream_pcm(video: Path, index: int) -> bytes:
    """Stream `index` of `video`, decoded like Bazarr's command but with a -map that works."""
    pcm = ["-f", "s16le", "-ac", "1", "-acodec", "pcm_s16le", "-af", "aresample=async=1", "-ar", "16000", "-"]
    command = ["ffmpeg", "-nostdin", "-threads", "0", "-i", str(video), "-map", f"0:{index}", *pcm]
    return subprocess.run(command, capture_output=True, check=True).stdout


# --------------------------------------------------------------------------- which track ffmpeg sends


def stereo_tone(dest: Path, frequency: float) -> Path:
    source = f"sine=frequency={frequency}:sample_rate=16000"
    run_tool(["ffmpeg", "-nostdin", "-v", "error", "-y", "-f", "lavfi", "-i", source, "-t", "1", "-ac", "2", str(dest)])
    return dest


@pytest.mark.parametrize(
    ("tracks", "expected"),
    [
        ([("mono", True), ("mono", False)], 1),  # the default track
        ([("mono", False), ("mono", True)], 2),  # the default track, though not the first
        ([("mono", False), ("stereo", False)], 2),  # no default: the most channels
        ([("stereo", False), ("mono", True)], 2),  # a default track beats more channels
        ([("mono", False), ("mono", False)], 1),  # nothing to choose by: the first
    ],
)
def test_ffmpeg_default_audio_is_the_stream_ffmpeg_uploads(
    tmp_path: Path, tracks: list[tuple[str, bool]], expected: int
) -> None:
    specs = []
    for i, (layout, default) in enumerate(tracks):
        path = tmp_path / f"t{i}.wav"
        tone = stereo_tone(path, 300 + 200 * i) if layout == "stereo" else make_tone(path, 1, frequency=300 + 200 * i)
        specs.append((tone, ["eng", "ger"][i], default))
    video = make_video(tmp_path / "v.mkv", specs)
    info = probe_media_sync(video)
    picked = ffmpeg_default_audio(info)
    assert picked is not None and picked.index == expected  # stream 0 is the video
    assert bazarr_upload(video, "ger") == stream_pcm(video, expected)


def audio(index: int, tag: str | None, *, default: bool = False, channels: int = 2) -> AudioStream:
    language = {"eng": "en", "ger": "de", "fre": "fr"}.get(tag or "")
    return AudioStream(index, "aac", channels, language, tag, default, None, 0.0)


def info(*streams: AudioStream) -> MediaInfo:
    return MediaInfo("/media/film.mkv", 60.0, "matroska,webm", 0.0, streams, ())


def test_the_track_in_the_requested_language_replaces_the_upload_only_when_it_is_another() -> None:
    film = info(audio(1, "eng", default=True), audio(2, "ger"), audio(3, "ger"))
    switch = track_for_language(film, "de")
    assert switch is not None and (switch.stream.index, switch.uploaded.index) == (2, 1)  # the first German one
    assert "#2 (ger)" in switch.reason and "#1 (eng)" in switch.reason
    assert track_for_language(film, "en") is None, "the upload is the English track"
    assert track_for_language(film, "fr") is None, "no French track: the upload is all there is"
    untagged = info(audio(1, None, default=True), audio(2, "ger"))
    switch = track_for_language(untagged, "de")
    assert switch is not None and switch.stream.index == 2 and "untagged" in switch.reason
    assert track_for_language(info(), "de") is None


# --------------------------------------------------------------------------- the request, end to end


@pytest.fixture(scope="module")
def library(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("library")
    german = speak(GERMAN, folder.parent / "de.wav", voice="de")
    film = folder / "Film (2020)" / "Film (2020).mkv"
    film.parent.mkdir()
    make_video(film, [(fixture_path("jfk.flac"), "eng", True), (german, "ger", False)])
    return folder


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory, library: Path) -> Iterator[LiveService]:
    settings = engine_settings(
        tmp_path_factory.mktemp("bazarr-tracks"),
        transcriptarr_mode="provider",
        whisper_model="bundled:base",
        quality="fast",  # temperature 0, no fallback: the same words every run
        library_paths=str(library),
        path_mappings=f"/bazarr/media:{library}",  # Bazarr's container sees the library elsewhere
    )
    with LiveService(settings, keepalive_seconds=0.5, poll_seconds=1.0) as live:
        yield live


def asr(service: LiveService, upload: bytes, video_file: str, language: str = "de") -> str:
    params = {"task": "transcribe", "language": language, "output": "srt", "encode": "false"}
    response = bazarr_post(service.url, "asr", upload, {**params, "video_file": video_file})
    assert response.status_code == 200, response.text
    return normalise(response.text)


@pytest.mark.slow
def test_german_asked_for_the_english_upload_gets_the_german_track(service: LiveService, library: Path) -> None:
    film = library / "Film (2020)" / "Film (2020).mkv"
    upload = bazarr_upload(film, "ger")
    assert upload == stream_pcm(film, 1), "Bazarr's command uploads the English track (the bug reproduced)"

    text = asr(service, upload, BAZARR_VIDEO)
    assert "morgen" in text, text
    assert "country" not in text and "americans" not in text, text
    [job] = bazarr_jobs(service, content_key(upload, "transcribe", "de", BAZARR_VIDEO))
    assert job.state == JobState.COMPLETED
    assert job.details["audio_track"]["index"] == 2 and job.details["video_file"] == BAZARR_VIDEO

    # The same request again (Bazarr's retries): the same answer, still one job.
    assert asr(service, upload, BAZARR_VIDEO) == text
    assert len(bazarr_jobs(service, content_key(upload, "transcribe", "de", BAZARR_VIDEO))) == 1

    # English asked for: the upload is the English track already, and is what gets transcribed.
    english = asr(service, upload, BAZARR_VIDEO, language="en")
    assert "country" in english, english
    [job] = bazarr_jobs(service, content_key(upload, "transcribe", "en", BAZARR_VIDEO))
    assert "audio_track" not in job.details


@pytest.mark.slow
def test_a_video_that_cannot_be_probed_leaves_the_upload_to_be_trusted(service: LiveService, library: Path) -> None:
    copy = library / "Copy (2021)" / "Copy (2021).mkv"
    copy.parent.mkdir()
    copy.write_bytes((library / "Film (2020)" / "Film (2020).mkv").read_bytes())
    upload = bazarr_upload(copy, "ger")
    copy.write_bytes(b"not a video any more\n" * 64)  # replaced by something ffprobe cannot read
    video_file = "/bazarr/media/Copy (2021)/Copy (2021).mkv"

    text = asr(service, upload, video_file)
    assert text and "morgen" not in text, text  # the English upload, transcribed as asked
    [job] = bazarr_jobs(service, content_key(upload, "transcribe", "de", video_file))
    assert job.state == JobState.COMPLETED and "audio_track" not in job.details
