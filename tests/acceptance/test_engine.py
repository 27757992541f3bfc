"""Media in, sidecar subtitles out: the real pipeline with the real tiny.en model."""

from __future__ import annotations

import itertools
import shutil
from pathlib import Path

import pytest

from tests.acceptance.engine_harness import JFK_TEXT, engine_settings, long_speech, process, srt_text, wer
from tests.media_factory import (
    fixture_path,
    make_noise,
    make_silence,
    make_video,
    media_duration,
    speak,
)
from transcriptarr.db.models import JobState

pytestmark = pytest.mark.slow


@pytest.fixture
def jfk() -> Path:
    return fixture_path("jfk.flac")


async def test_jfk_movie_gets_an_accurate_english_srt(tmp_path: Path, jfk: Path) -> None:
    movie = make_video(_mkdir(tmp_path) / "Kennedy (1961).mkv", [(jfk, "eng", True)])
    [job] = await process(engine_settings(tmp_path), [movie])
    assert job.state == JobState.COMPLETED, job.error
    subtitle = tmp_path / "lib" / "Kennedy (1961).en.srt"
    assert job.result_path == str(subtitle)
    cues, words = srt_text(subtitle)
    assert wer(JFK_TEXT, words) <= 0.15, words
    duration = media_duration(movie)
    starts = [cue.start.total_seconds() for cue in cues]
    assert starts == sorted(starts)
    for cue, following in itertools.pairwise(cues):
        assert cue.end <= following.start
    assert all(0 <= cue.start.total_seconds() < cue.end.total_seconds() <= duration + 0.01 for cue in cues)
    assert job.source_language == "en" and job.media_duration == pytest.approx(duration, abs=0.1)
    assert job.details["audio_track"]["index"] == 1
    assert job.processing_seconds is not None and job.processing_seconds > 0


async def test_preferred_audio_language_picks_the_right_track(tmp_path: Path) -> None:
    _mkdir(tmp_path)
    english = speak("The quick brown fox jumps over the lazy dog.", tmp_path / "en.wav")
    other = speak("Guten Morgen, wie geht es dir heute?", tmp_path / "de.wav", voice="de")
    movie = make_video(tmp_path / "lib" / "Two Tracks.mkv", [(other, "ger", True), (english, "eng", False)])
    settings = engine_settings(tmp_path, preferred_audio_languages="en,de")
    [job] = await process(settings, [movie])
    assert job.state == JobState.COMPLETED, job.error
    assert job.details["audio_track"]["index"] == 2
    assert "matches preferred language 'en'" in job.details["audio_track"]["reason"]
    _, words = srt_text(tmp_path / "lib" / "Two Tracks.en.srt")
    # espeak's robot voice is hard for tiny.en: most, not all, of the words.
    assert len({"quick", "brown", "jumps", "over", "lazy", "dog"} & set(words.split())) >= 3, words


async def test_audio_starting_late_gets_shifted_timestamps(tmp_path: Path, jfk: Path) -> None:
    _mkdir(tmp_path)
    movie = make_video(tmp_path / "lib" / "Late.mkv", [(jfk, "eng", True)], start_offsets={0: 2.0})
    reference = make_video(tmp_path / "lib" / "OnTime.mkv", [(jfk, "eng", True)])
    late, on_time = await process(engine_settings(tmp_path), [movie, reference])
    assert late.state == on_time.state == JobState.COMPLETED
    late_cues, _ = srt_text(tmp_path / "lib" / "Late.en.srt")
    on_time_cues, _ = srt_text(tmp_path / "lib" / "OnTime.en.srt")
    # Whisper may group the words differently; the speech itself must move by 2 s.
    first_shift = (late_cues[0].start - on_time_cues[0].start).total_seconds()
    last_shift = (late_cues[-1].end - on_time_cues[-1].end).total_seconds()
    assert first_shift == pytest.approx(2.0, abs=0.3)
    assert last_shift == pytest.approx(2.0, abs=0.6)


@pytest.mark.parametrize("kind", ["silence", "noise"])
async def test_a_minute_of_silence_or_noise_yields_no_hallucinated_lines(tmp_path: Path, kind: str) -> None:
    _mkdir(tmp_path)
    make = make_silence if kind == "silence" else make_noise
    audio = make(tmp_path / f"{kind}.wav", 60.0)
    movie = make_video(tmp_path / "lib" / f"{kind}.mkv", [(audio, "eng", True)])
    [job] = await process(engine_settings(tmp_path), [movie])
    assert job.state == JobState.COMPLETED, job.error
    assert "no speech" in job.details["skipped"]
    assert not list((tmp_path / "lib").glob("*.srt"))


async def test_audio_only_file_gets_lrc_lyrics(tmp_path: Path) -> None:
    _mkdir(tmp_path)
    wav = speak("This is a short audiobook chapter about rivers and mountains.", tmp_path / "book.wav")
    book = tmp_path / "lib" / "Chapter 1.mp3"
    from tests.media_factory import run_tool

    run_tool(["ffmpeg", "-nostdin", "-v", "error", "-y", "-i", str(wav), "-metadata:s:a:0", "language=eng", str(book)])
    [job] = await process(engine_settings(tmp_path), [book])
    assert job.state == JobState.COMPLETED, job.error
    lyrics = (tmp_path / "lib" / "Chapter 1.lrc").read_text()
    assert lyrics.startswith("[") and "rivers" in lyrics.lower()


async def test_bad_inputs_end_with_clear_reasons_and_the_good_file_still_gets_done(tmp_path: Path, jfk: Path) -> None:
    lib = _mkdir(tmp_path)
    empty = lib / "empty.mkv"
    empty.write_bytes(b"")
    text = lib / "notes.mkv"
    text.write_text("this is not a video\n")
    good = make_video(lib / "good.mkv", [(jfk, "eng", True)])
    truncated = lib / "truncated.mp4"
    make_video(tmp_path / "whole.mp4", [(jfk, "eng", True)])
    truncated.write_bytes((tmp_path / "whole.mp4").read_bytes()[:2000])
    silent_video = make_video(lib / "no audio.mkv", [])
    vanished = make_video(lib / "vanished.mkv", [(jfk, "eng", True)])

    settings = engine_settings(tmp_path)
    order = [empty, text, truncated, silent_video, vanished, good]
    vanished.unlink()  # deleted while queued (after we decided to queue it)
    jobs = await process(settings, order)
    by_name = {Path(job.media_path or "").name: job for job in jobs}

    assert by_name["good.mkv"].state == JobState.COMPLETED
    expectations = {
        "empty.mkv": "empty",
        "notes.mkv": "not",
        "truncated.mp4": "moov atom not found",
        "no audio.mkv": "no audio stream",
        "vanished.mkv": "not found",
    }
    for name, words in expectations.items():
        job = by_name[name]
        assert job.state == JobState.FAILED, (name, job.state, job.error)
        assert job.error_permanent and job.attempts == 1
        assert name in (job.error or "") and words in (job.error or "").lower(), job.error


async def test_unwritable_folder_fails_clearly_and_keeps_existing_files(tmp_path: Path, jfk: Path) -> None:
    shelf = _mkdir(tmp_path)
    make_video(tmp_path / "src.mkv", [(jfk, "eng", True)])
    readonly = _read_only_mount(shelf, [tmp_path / "src.mkv"])
    try:
        [job] = await process(engine_settings(tmp_path), [readonly / "src.mkv"])
    finally:
        _unmount(readonly)
    assert job.state == JobState.FAILED
    assert job.error_permanent
    assert "read-only" in (job.error or "").lower() or "not writable" in (job.error or "").lower(), job.error


async def test_existing_foreign_subtitle_is_never_overwritten(tmp_path: Path, jfk: Path) -> None:
    lib = _mkdir(tmp_path)
    movie = make_video(lib / "Movie.mkv", [(jfk, "eng", True)])
    mine = lib / "Movie.en.srt"
    mine.write_text("1\n00:00:01,000 --> 00:00:02,000\nmy own subtitle\n")
    [job] = await process(engine_settings(tmp_path), [movie])
    assert job.state == JobState.COMPLETED
    assert "not written by Transcriptarr" in job.details["skipped"]
    assert mine.read_text().endswith("my own subtitle\n")


async def test_long_speech_is_split_into_readable_cues(tmp_path: Path) -> None:
    lib = _mkdir(tmp_path)
    speech = long_speech(tmp_path, 10)
    movie = make_video(lib / "Rivers.mkv", [(speech, "eng", True)])
    [job] = await process(engine_settings(tmp_path), [movie])
    assert job.state == JobState.COMPLETED, job.error
    cues, _ = srt_text(lib / "Rivers.en.srt")
    assert len(cues) >= 6
    for cue in cues:
        lines = cue.content.split("\n")
        assert len(lines) <= 2 and all(len(line) <= 42 for line in lines), cue.content
        assert (cue.end - cue.start).total_seconds() <= 7.0


def _mkdir(tmp_path: Path) -> Path:
    lib = tmp_path / "lib"
    lib.mkdir(exist_ok=True)
    return lib


def _read_only_mount(where: Path, files: list[Path]) -> Path:
    """A small read-only filesystem holding `files` (a NAS share mounted read-only)."""
    import subprocess

    target = where / "readonly"
    target.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=8m", "tmpfs", str(target)], capture_output=True)
    if mounted.returncode != 0:
        from tests.conftest import unavailable

        unavailable(f"cannot mount a tmpfs here: {mounted.stderr.decode().strip()}")
    for path in files:
        shutil.copy(path, target / path.name)
    subprocess.run(["mount", "-o", "remount,ro", str(target)], check=True)
    return target


def _unmount(target: Path) -> None:
    import subprocess

    subprocess.run(["umount", str(target)], check=True)


async def test_multilingual_model_detects_language_and_translates_to_english(tmp_path: Path) -> None:
    lib = _mkdir(tmp_path)
    german = speak(
        "Guten Morgen, wie geht es dir heute? Das Wetter ist sehr schön. "
        "Ich möchte heute in den Park gehen und mit meinen Freunden spielen.",
        tmp_path / "de.wav",
        voice="de",
    )
    spanish = speak(
        "Buenos días, ¿cómo estás hoy? Hace muy buen tiempo. Quiero ir al parque con mis amigos esta tarde.",
        tmp_path / "es.wav",
        voice="es",
    )
    german_movie = make_video(lib / "Der Film.mkv", [(german, None, True)])  # untagged: detection decides
    spanish_movie = make_video(lib / "La Pelicula.mkv", [(spanish, None, True)])
    settings = engine_settings(tmp_path, whisper_model="bundled:base", target_languages="en")
    # What a client recorded with the job survives language detection and completion.
    (translated,) = await process(settings, [german_movie], target_language="en", details={"client": "test"})
    (original,) = await process(settings, [spanish_movie])

    assert translated.state == JobState.COMPLETED, translated.error
    assert translated.source_language == "de" and translated.task == "translate"
    assert translated.details["language_from"] == "detected" and translated.details["client"] == "test"
    _, english = srt_text(lib / "Der Film.en.srt")
    assert len({"good", "morning", "park", "friends", "weather", "today", "nice"} & set(english.split())) >= 3, english

    assert original.state == JobState.COMPLETED, original.error
    assert original.source_language == "es" and original.task == "transcribe"
    _, spanish_words = srt_text(lib / "La Pelicula.es.srt")
    assert len({"buenos", "días", "parque", "amigos", "tiempo", "hoy"} & set(spanish_words.split())) >= 3, spanish_words


async def test_english_only_model_skips_what_it_cannot_produce(tmp_path: Path, jfk: Path) -> None:
    lib = _mkdir(tmp_path)
    movie = make_video(lib / "Kennedy.mkv", [(jfk, "eng", True)])
    [job] = await process(engine_settings(tmp_path), [movie], target_language="de")
    assert job.state == JobState.COMPLETED
    assert "cannot make de subtitles from en audio" in job.details["skipped"]
    assert not list(lib.glob("*.srt"))
