"""The decision table: one test per rule, on real ffmpeg-made media and real sidecar files.

Decisions are asked through `Library.explain`, which probes the file and lists the
folder like a scan does, and queues nothing.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.library.conftest import Kit, LibraryMaker, place
from transcriptarr.db.models import Task
from transcriptarr.library.rules import Decision
from transcriptarr.subtitles.registry import SubtitleRegistry

TRANSCRIBE, TRANSLATE = Task.TRANSCRIBE, Task.TRANSLATE


async def explain(make_library: LibraryMaker, path: Path, **rules: Any) -> Decision:
    decision = await make_library(rules=rules).explain(path)
    assert decision.reasons, "every decision has reasons"
    assert await make_library.jobs() == [], "explain never queues"
    return decision


def said(decision: Decision, text: str) -> bool:
    return any(text in reason for reason in decision.reasons)


# --- rules 1-6: the path alone; ffprobe is never run -------------------------------


async def test_1_unsafe_names_are_skipped(make_library: LibraryMaker, kit: Kit, library_dir: Path) -> None:
    movie = place(kit.french, library_dir / "Bad\nName.mkv")
    decision = await explain(make_library, movie)
    assert not decision.queue and "control character" in decision.summary
    assert make_library.probe.count == 0


@pytest.mark.parametrize("relative", ["._Movie.mkv", ".hidden/Movie.mkv", ".Trash-1000/files/Movie.mkv"])
async def test_2_hidden_files_and_folders_are_skipped(
    make_library: LibraryMaker, kit: Kit, library_dir: Path, relative: str
) -> None:
    decision = await explain(make_library, place(kit.french, library_dir / relative))
    assert not decision.queue and "hidden" in decision.summary


@pytest.mark.parametrize(
    "name", ["Movie.mkv.part", "Movie.mkv.!qB", "Movie.mkv.crdownload", "Movie.mkv.tmp", "Movie.mkv.aria2"]
)
async def test_3_downloads_in_progress_are_skipped(
    make_library: LibraryMaker, kit: Kit, library_dir: Path, name: str
) -> None:
    decision = await explain(make_library, place(kit.french, library_dir / name))
    assert not decision.queue and "download in progress" in decision.summary
    assert make_library.probe.count == 0


async def test_4_media_type_by_extension(make_library: LibraryMaker, kit: Kit, library_dir: Path) -> None:
    nfo = library_dir / "Movie.nfo"
    nfo.write_text("<movie/>")
    assert "not a media file (.nfo" in (await explain(make_library, nfo)).summary

    song = place(kit.french, library_dir / "Song.m4a")
    assert "not a media file (.m4a" in (await explain(make_library, song)).summary  # audio is off by default
    decision = await explain(make_library, song, audio_extensions=frozenset({".m4a"}))
    assert decision.queue and said(decision, "audio file (.m4a)")

    upper = place(kit.french, library_dir / "MOVIE.MKV")
    assert said(await explain(make_library, upper), "video file (.mkv)")


async def test_4_an_audio_file_gets_one_lyrics_file(make_library: LibraryMaker, kit: Kit, library_dir: Path) -> None:
    song = place(kit.french, library_dir / "Song.m4a")
    audio = frozenset({".m4a"})
    decision = await explain(make_library, song, audio_extensions=audio, target_languages=("original", "en"))
    assert decision.jobs == [(None, TRANSCRIBE)] and said(decision, "only the first wanted language")
    (library_dir / "Song.lrc").write_text("[00:00.00] la")
    decision = await explain(make_library, song, audio_extensions=audio)
    assert not decision.queue and said(decision, "has lyrics: Song.lrc")


async def test_5_ignore_marker_in_the_folder_or_a_parent(
    make_library: LibraryMaker, kit: Kit, library_dir: Path
) -> None:
    movie = place(kit.french, library_dir / "Shows" / "Show" / "Season 1" / "E01.mkv")
    assert (await explain(make_library, movie)).queue
    (library_dir / "Shows" / ".transcriptarr-ignore").touch()
    decision = await explain(make_library, movie)
    assert not decision.queue
    assert decision.summary == f"skipped: folder {library_dir / 'Shows'} holds a .transcriptarr-ignore file"


@pytest.mark.parametrize(
    "relative",
    [
        "Movie/Sample/movie.mkv",
        "Movie/movie-sample.mkv",
        "Movie/Movie.sample.mkv",
        "Movie/Extras/Making of.mkv",
        "Movie/Featurettes/Interview.mkv",
        "Movie/Trailers/Trailer.mkv",
        "Movie/Movie-trailer.mkv",
        "Movie/Behind The Scenes/b.mkv",
        "@eaDir/Movie.mkv/thumb.mkv",
    ],
)
async def test_6_ignore_patterns(make_library: LibraryMaker, kit: Kit, library_dir: Path, relative: str) -> None:
    decision = await explain(make_library, place(kit.french, library_dir / relative))
    assert not decision.queue and "matches ignore pattern" in decision.summary
    assert make_library.probe.count == 0


async def test_6_custom_ignore_patterns(make_library: LibraryMaker, kit: Kit, library_dir: Path) -> None:
    movie = place(kit.french, library_dir / "Kids" / "Cartoon.mkv")
    assert (await explain(make_library, movie)).queue
    decision = await explain(make_library, movie, ignore_globs=("*/kids/*",))
    assert decision.summary == "skipped: matches ignore pattern '*/kids/*' (LIBRARY_IGNORE_GLOBS)"
    # "Sample" inside a title is not a sample.
    assert (await explain(make_library, place(kit.french, library_dir / "Free Samples (2020).mkv"))).queue


# --- rules 7-11: the probed file ------------------------------------------------------


async def test_7_unreadable_media(make_library: LibraryMaker, kit: Kit, library_dir: Path) -> None:
    decision = await explain(make_library, place(kit.not_media, library_dir / "Broken.mkv"))
    assert not decision.queue and "ffprobe cannot read it" in decision.summary
    assert not decision.retry, "a file ffprobe cannot read stays unreadable until it changes"


async def test_8_no_audio_stream(make_library: LibraryMaker, kit: Kit, library_dir: Path) -> None:
    decision = await explain(make_library, place(kit.no_audio, library_dir / "Silent.mkv"))
    assert not decision.queue and decision.summary == "skipped: no audio stream"


async def test_9_minimum_duration(make_library: LibraryMaker, kit: Kit, library_dir: Path) -> None:
    movie = place(kit.french, library_dir / "Short.mkv")
    decision = await explain(make_library, movie, min_duration_seconds=60)
    assert not decision.queue
    assert "shorter than 60 s (LIBRARY_MIN_DURATION_SECONDS)" in decision.summary
    assert (await explain(make_library, movie, min_duration_seconds=1)).queue


async def test_10_audio_language_to_skip(make_library: LibraryMaker, kit: Kit, library_dir: Path) -> None:
    movie = place(kit.english, library_dir / "English.mkv")
    decision = await explain(make_library, movie, skip_audio_languages=("eng",))
    assert not decision.queue
    assert decision.summary == "skipped: audio in English is not transcribed (SKIP_AUDIO_LANGUAGES)"


async def test_10_unknown_audio_language(make_library: LibraryMaker, kit: Kit, library_dir: Path) -> None:
    movie = place(kit.untagged, library_dir / "Untagged.mkv")
    decision = await explain(make_library, movie)
    assert decision.jobs == [(None, TRANSCRIBE)]
    assert said(decision, "audio language unknown: track #1 has no language tag")
    assert said(decision, "the worker detects the audio language")
    decision = await explain(make_library, movie, skip_unknown_audio_language=True)
    assert not decision.queue and "SKIP_UNKNOWN_AUDIO_LANGUAGE" in decision.summary


async def test_10_the_track_the_worker_would_use(make_library: LibraryMaker, kit: Kit, library_dir: Path) -> None:
    movie = place(kit.two_tracks, library_dir / "Two.mkv")
    assert (await explain(make_library, movie)).source_language == "fr"  # the default track
    decision = await explain(make_library, movie, preferred_audio_languages=("en",))
    assert decision.source_language == "en"
    assert (await explain(make_library, movie, force_language="de")).source_language == "de"


async def test_11_original_language(make_library: LibraryMaker, kit: Kit, library_dir: Path) -> None:
    movie = place(kit.french, library_dir / "Film.mkv")
    decision = await explain(make_library, movie)
    assert decision.queue and decision.jobs == [(None, TRANSCRIBE)]
    assert said(decision, "original (fr): no French subtitles; to queue: transcribe the French audio")


async def test_11_translation_into_english_and_what_whisper_cannot_do(
    make_library: LibraryMaker, kit: Kit, library_dir: Path
) -> None:
    movie = place(kit.french, library_dir / "Film.mkv")
    decision = await explain(make_library, movie, target_languages=("en", "de", "original", "fr"))
    assert decision.jobs == [("en", TRANSLATE), (None, TRANSCRIBE)]  # "fr" is the same work as "original"
    assert said(decision, "en: no English subtitles; to queue: translate the French audio into English")
    assert said(decision, "de: no German subtitles, but cannot make de subtitles from fr audio")
    assert said(decision, "fr: the same as original")


async def test_11_a_language_whisper_does_not_know(make_library: LibraryMaker, kit: Kit, library_dir: Path) -> None:
    decision = await explain(make_library, place(kit.klingon, library_dir / "Klingon.mkv"))
    assert not decision.queue and said(decision, "Whisper cannot recognise Klingon audio")


@pytest.mark.parametrize(
    "name",
    [
        "Film.fr.srt",
        "Film.fre.srt",
        "Film.French.srt",
        "Film.fr-CA.srt",
        "Film.fr.hi.srt",
        "Film.fr.sdh.srt",
        "Subs/Film.fr.srt",
        "Subtitles/Film.fr.ass",
        "film.FR.SRT",
        "Film.fr.sup",
    ],
)
async def test_11_existing_sidecars_cover_the_language(
    make_library: LibraryMaker, kit: Kit, library_dir: Path, name: str
) -> None:
    movie = place(kit.french, library_dir / "Film.mkv")
    (library_dir / name).parent.mkdir(exist_ok=True)
    (library_dir / name).write_text("1\n")
    decision = await explain(make_library, movie)
    assert not decision.queue
    assert said(decision, f"original (fr): has French subtitles: {Path(name).name} (sidecar)")


async def test_11_vobsub_pair_covers_the_language(make_library: LibraryMaker, kit: Kit, library_dir: Path) -> None:
    movie = place(kit.french, library_dir / "Film.mkv")
    (library_dir / "Film.fr.idx").write_text("# VobSub index file, v7")
    (library_dir / "Film.fr.sub").write_bytes(b"\x00\x00\x01\xba")
    assert said(await explain(make_library, movie), "has French subtitles: Film.fr.idx (sidecar)")
    decision = await explain(make_library, movie, count_image_subtitles=False)
    assert decision.queue and said(decision, "Film.fr.idx (sidecar), image-based (LIBRARY_COUNT_IMAGE_SUBTITLES)")


async def test_11_forced_sidecars_do_not_count_by_default(
    make_library: LibraryMaker, kit: Kit, library_dir: Path
) -> None:
    movie = place(kit.french, library_dir / "Film.mkv")
    (library_dir / "Film.fr.forced.srt").write_text("1\n")
    decision = await explain(make_library, movie)
    assert decision.queue
    assert said(decision, "not counted: Film.fr.forced.srt (sidecar), forced only (LIBRARY_COUNT_FORCED_SUBTITLES)")
    assert not (await explain(make_library, movie, count_forced_subtitles=True)).queue


async def test_11_embedded_subtitles(make_library: LibraryMaker, kit: Kit, library_dir: Path) -> None:
    english = place(kit.english_subtitles, library_dir / "A.mkv")
    decision = await explain(make_library, english, target_languages=("en",))
    assert not decision.queue and said(decision, "en: has English subtitles: embedded stream #2 (subrip)")

    forced = place(kit.forced_english, library_dir / "B.mkv")
    decision = await explain(make_library, forced, target_languages=("en",))
    assert decision.jobs == [("en", TRANSLATE)]
    assert said(decision, "embedded stream #2 (subrip), forced only")


async def test_11_subtitles_the_service_wrote_count(make_library: LibraryMaker, kit: Kit, library_dir: Path) -> None:
    french = place(kit.french, library_dir / "Film.mkv")
    ours = library_dir / "Film.fr.mine.srt"  # a name no rule reads (a marker since removed)
    ours.write_text("1\n")
    registry = SubtitleRegistry(make_library.db)
    await registry.record(ours, media_path=str(french), language="fr", job_id=7)
    decision = await explain(make_library, french)
    assert not decision.queue and said(decision, "Film.fr.mine.srt (written by Transcriptarr)")

    untagged = place(kit.untagged, library_dir / "Other.mkv")
    ours = library_dir / "Other.de.srt"
    ours.write_text("1\n")
    await registry.record(ours, media_path=str(untagged), language="de", job_id=8)
    decision = await explain(make_library, untagged)
    assert not decision.queue and said(decision, "original: covered by Other.de.srt, written by Transcriptarr")
    ours.unlink()
    assert (await explain(make_library, untagged)).queue, "only files that still exist count"


async def test_explain_outside_the_library(make_library: LibraryMaker, kit: Kit, tmp_path: Path) -> None:
    elsewhere = place(kit.french, tmp_path / "elsewhere" / "Film.mkv")
    decision = await explain(make_library, elsewhere)
    assert decision.reasons[0].startswith("outside the library folders (LIBRARY_PATHS)")
    assert decision.queue
