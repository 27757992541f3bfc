from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from tests.media_factory import make_video, speak, write_srt
from transcriptarr.media.probe import (
    MediaInfo,
    NoAudioError,
    ProbeError,
    ffmpeg_path_arg,
    probe_media,
    probe_media_sync,
    stderr_tail,
)


@pytest.fixture(scope="module")
def media_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("probe")


@pytest.fixture(scope="module")
def two_track_mkv(media_dir: Path) -> Path:
    """English (not default) + German (default) audio, English and forced German subtitles."""
    english = speak("hello world, this is the first track", media_dir / "en.wav")
    german = speak("Hallo Welt, das ist die zweite Spur", media_dir / "de.wav", voice="de")
    en_srt = write_srt(media_dir / "en.srt", [(0.5, 1.5, "Hello world")])
    de_srt = write_srt(media_dir / "de.srt", [(0.5, 1.5, "Hallo Welt")])
    return make_video(
        media_dir / "two tracks.mkv",
        [(english, "eng", False), (german, "ger", True)],
        subtitle_tracks=[(en_srt, "eng", False), (de_srt, "ger", True)],
        audio_titles=["Main", "Deutsch"],
    )


@pytest.mark.asyncio
async def test_probe_two_audio_tracks_with_subtitles(two_track_mkv: Path) -> None:
    info = await probe_media(two_track_mkv)

    assert info.path == str(two_track_mkv)
    assert info.format_name is not None and "matroska" in info.format_name
    assert info.duration is not None and 2.0 < info.duration < 4.0
    english, german = info.audio
    assert (english.index, english.language, english.raw_language, english.default) == (1, "en", "eng", False)
    assert (german.index, german.language, german.raw_language, german.default) == (2, "de", "ger", True)
    assert (english.title, german.title) == ("Main", "Deutsch")
    assert english.codec == "aac" and english.channels == 1
    en_sub, de_sub = info.subtitles
    assert (en_sub.index, en_sub.language, en_sub.forced, en_sub.is_text) == (3, "en", False, True)
    assert (de_sub.index, de_sub.language, de_sub.forced, de_sub.is_text) == (4, "de", True, True)
    assert de_sub.codec == "subrip"


def test_sync_probe_matches_async(two_track_mkv: Path) -> None:
    info = probe_media_sync(two_track_mkv)
    assert [s.language for s in info.audio] == ["en", "de"]
    assert len(info.subtitles) == 2


def test_media_info_survives_json(two_track_mkv: Path) -> None:
    info = probe_media_sync(two_track_mkv)
    restored = MediaInfo.from_dict(json.loads(json.dumps(info.to_dict())))
    assert restored == info


def test_media_info_from_malformed_dict_raises_value_error() -> None:
    with pytest.raises(ValueError, match="malformed"):
        MediaInfo.from_dict({"path": "x.mkv", "audio": [{"index": 1}]})


@pytest.mark.asyncio
@pytest.mark.parametrize("container", ["mkv", "mp4"])
async def test_stream_start_time_is_reported(media_dir: Path, container: str) -> None:
    speech = speak("starts late", media_dir / "late.wav")
    video = make_video(media_dir / f"late.{container}", [(speech, "eng", True)], start_offsets={0: 2.0})

    info = await probe_media(video)

    # mp4 with AAC loses the encoder delay (~0.05 s) from the edit list.
    assert info.audio[0].start_time == pytest.approx(2.0, abs=0.06)
    assert info.start_time == pytest.approx(0.0, abs=0.06)


@pytest.mark.asyncio
async def test_video_without_audio_raises_no_audio(media_dir: Path) -> None:
    silent_video = make_video(media_dir / "video only.mkv", [])

    with pytest.raises(NoAudioError) as caught:
        await probe_media(silent_video)
    assert caught.value.permanent and caught.value.kind == "no_audio"
    assert str(silent_video) in str(caught.value)

    info = await probe_media(silent_video, require_audio=False)
    assert info.audio == ()


@pytest.mark.asyncio
async def test_zero_byte_file(tmp_path: Path) -> None:
    empty = tmp_path / "empty.mkv"
    empty.touch()
    with pytest.raises(ProbeError, match="empty") as caught:
        await probe_media(empty)
    assert caught.value.permanent and caught.value.kind == "empty"
    assert str(empty) in str(caught.value)


@pytest.mark.asyncio
async def test_missing_file_is_permanent(tmp_path: Path) -> None:
    with pytest.raises(ProbeError, match="not found") as caught:
        await probe_media(tmp_path / "gone.mkv")
    assert caught.value.permanent and caught.value.kind == "missing"


@pytest.mark.asyncio
async def test_directory_is_not_media(tmp_path: Path) -> None:
    with pytest.raises(ProbeError, match="not a regular file") as caught:
        await probe_media(tmp_path)
    assert caught.value.kind == "not_a_file"


@pytest.mark.asyncio
async def test_text_file_named_mkv(tmp_path: Path) -> None:
    fake = tmp_path / "notes.mkv"
    fake.write_text("this is not a film\njust text\n")
    with pytest.raises(ProbeError) as caught:
        await probe_media(fake)
    assert caught.value.permanent and caught.value.kind == "not_media"
    message = str(caught.value)
    assert str(fake) in message and "Invalid data found" in message  # ffprobe's own words


@pytest.mark.asyncio
async def test_truncated_mp4(media_dir: Path, tmp_path: Path) -> None:
    # The index (moov) of a non-faststart mp4 sits at the end: a cut-off download loses it.
    speech = speak("truncated", media_dir / "trunc.wav")
    whole = make_video(tmp_path / "whole.mp4", [(speech, "eng", True)])
    truncated = tmp_path / "truncated.mp4"
    truncated.write_bytes(whole.read_bytes()[:3000])

    with pytest.raises(ProbeError, match="moov atom not found") as caught:
        await probe_media(truncated)
    assert caught.value.permanent and caught.value.kind == "not_media"


@pytest.mark.asyncio
async def test_truncated_header_mkv(two_track_mkv: Path, tmp_path: Path) -> None:
    truncated = tmp_path / "cut.mkv"
    truncated.write_bytes(two_track_mkv.read_bytes()[:300])
    with pytest.raises(ProbeError) as caught:
        await probe_media(truncated)
    assert caught.value.kind == "not_media"
    assert "ffprobe said" in str(caught.value)


@pytest.mark.asyncio
@pytest.mark.parametrize(
    "name",
    [
        "with space.mkv",
        'it\'s "quoted".mkv',
        "ünïcødé 日本語.mkv",
        "new\nline.mkv",
        "-leading-dash.mkv",
        "-i",
        "pipe:1",
        "http:not-a-url.mkv",
        "percent %d and #hash?.mkv",
        "$(touch pwned).mkv",
    ],
)
async def test_odd_file_names(two_track_mkv: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str) -> None:
    monkeypatch.chdir(tmp_path)
    shutil.copy(two_track_mkv, tmp_path / name)

    info = await probe_media(Path(name))  # relative on purpose: "-x" must not become an option

    assert len(info.audio) == 2
    assert not (tmp_path / "pwned").exists()


def test_ffmpeg_path_arg_is_absolute_file_url(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert ffmpeg_path_arg(Path("-x.mkv")) == f"file:{tmp_path}/-x.mkv"


@pytest.mark.asyncio
async def test_timeout_is_transient(two_track_mkv: Path) -> None:
    with pytest.raises(ProbeError, match="did not finish") as caught:
        await probe_media(two_track_mkv, timeout=0)
    assert not caught.value.permanent and caught.value.kind == "timeout"


@pytest.mark.asyncio
async def test_missing_ffprobe_is_transient(two_track_mkv: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", "/nonexistent")
    with pytest.raises(ProbeError, match="could not run ffprobe") as caught:
        await probe_media(two_track_mkv)
    assert not caught.value.permanent


def test_stderr_tail_keeps_last_lines() -> None:
    text = "\n".join(f"line {n}" for n in range(40)) + "\n\n"
    tail = stderr_tail(text.encode(), 15)
    assert tail.splitlines() == [f"line {n}" for n in range(25, 40)]
