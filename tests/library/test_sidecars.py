"""Subtitle files next to media: every supported name form, found in real folders."""

from __future__ import annotations

import argparse
from collections.abc import Collection, Iterator
from pathlib import Path

import pytest
import structlog

from tests.library.conftest import Kit, LibraryMaker, place
from transcriptarr.db.models import JobState
from transcriptarr.library.commands import add_library_commands
from transcriptarr.library.sidecars import Sidecar, candidate_stems, find_sidecars, parse_name
from transcriptarr.library_commands import LIBRARY_HANDLERS
from transcriptarr.settings import load_settings

SRT = "1\n00:00:00,000 --> 00:00:01,000\nhi\n"


def found(
    folder: Path, media: str, *names: str, marker: str | None = None, media_extensions: Collection[str] = ()
) -> list[Sidecar]:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / media).write_bytes(b"media")
    for name in names:
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(SRT)
    return find_sidecars(str(folder / media), marker=marker, media_extensions=media_extensions)


@pytest.mark.parametrize(
    ("name", "language", "forced", "hearing_impaired"),
    [
        ("Movie.en.srt", "en", False, False),
        ("Movie.eng.srt", "en", False, False),
        ("Movie.English.srt", "en", False, False),
        ("Movie.english.srt", "en", False, False),
        ("Movie.pt-BR.srt", "pt", False, False),
        ("Movie.pt_BR.srt", "pt", False, False),
        ("Movie.ger.ass", "de", False, False),
        ("Movie.deu.ssa", "de", False, False),
        ("Movie.fr.vtt", "fr", False, False),
        ("Movie.en.forced.srt", "en", True, False),
        ("Movie.en.hi.srt", "en", False, True),
        ("Movie.en.sdh.srt", "en", False, True),
        ("Movie.en.cc.srt", "en", False, True),
        ("Movie.en.sdh.forced.srt", "en", True, True),
        ("Movie.en.default.srt", "en", False, False),
        ("Movie.hi.srt", "hi", False, False),  # alone, "hi" is Hindi
        ("MOVIE.EN.SRT", "en", False, False),
        ("movie.En.Srt", "en", False, False),
        ("Movie.srt", None, False, False),  # no language in the name
    ],
)
def test_sidecar_names(tmp_path: Path, name: str, language: str | None, forced: bool, hearing_impaired: bool) -> None:
    [sidecar] = found(tmp_path, "Movie.mkv", name)
    assert (sidecar.language, sidecar.forced, sidecar.hearing_impaired, sidecar.image) == (
        language,
        forced,
        hearing_impaired,
        False,
    )
    assert sidecar.path == str(tmp_path / name)


@pytest.mark.parametrize("folder", ["Subs", "Subtitles", "subs", "SUBTITLES"])
def test_subtitle_subfolders(tmp_path: Path, folder: str) -> None:
    [sidecar] = found(tmp_path, "Movie.mkv", f"{folder}/Movie.en.srt")
    assert sidecar.language == "en"
    assert sidecar.path == str(tmp_path / folder / "Movie.en.srt")


def test_vobsub_pair_counts_once_as_image(tmp_path: Path) -> None:
    [sidecar] = found(tmp_path, "Movie.mkv", "Movie.en.sub", "Movie.en.idx")
    assert (sidecar.name, sidecar.language, sidecar.image) == ("Movie.en.idx", "en", True)


def test_sub_alone_is_a_text_subtitle_and_idx_alone_is_nothing(tmp_path: Path) -> None:
    assert [(s.name, s.image) for s in found(tmp_path / "a", "Movie.mkv", "Movie.en.sub")] == [("Movie.en.sub", False)]
    assert found(tmp_path / "b", "Movie.mkv", "Movie.en.idx") == []


def test_pgs_is_an_image_subtitle(tmp_path: Path) -> None:
    [sidecar] = found(tmp_path, "Movie.mkv", "Movie.en.sup")
    assert (sidecar.language, sidecar.image) == ("en", True)


def test_names_of_other_files_do_not_match(tmp_path: Path) -> None:
    names = ["Movie2.en.srt", "Movie.en.nfo", "Other.en.srt", "Movie en.srt", "Movies.en.srt"]
    assert found(tmp_path, "Movie.mkv", *names) == []


def test_a_name_that_starts_with_a_longer_media_stem_is_that_files(tmp_path: Path) -> None:
    (tmp_path / "Movie.Part2.mkv").write_bytes(b"media")
    names = ("Movie.en.srt", "Movie.Part2.en.srt", "Subs/Movie.Part2.de.srt")
    [mine] = found(tmp_path, "Movie.mkv", *names, media_extensions={".mkv"})
    assert mine.name == "Movie.en.srt"
    part2 = find_sidecars(str(tmp_path / "Movie.Part2.mkv"), media_extensions={".mkv"})
    assert [(s.name, s.language) for s in part2] == [("Movie.Part2.en.srt", "en"), ("Movie.Part2.de.srt", "de")]
    # Without the other media file in the listing, "Part2" is a part like any other (a title, a group).
    unknown = find_sidecars(str(tmp_path / "Movie.mkv"))
    assert [s.name for s in unknown] == ["Movie.Part2.en.srt", "Movie.en.srt", "Movie.Part2.de.srt"]


def test_a_name_without_a_language_is_a_sidecar_without_one(tmp_path: Path) -> None:
    [sidecar] = found(tmp_path, "Movie.mkv", "Movie.xx-unknown.forced.srt")
    assert (sidecar.language, sidecar.forced) == (None, True)


def test_stems_with_dots_and_odd_characters(tmp_path: Path) -> None:
    media = "Movie (2020) [1080p] 'x' - Déjà.vu.mkv"
    [sidecar] = found(tmp_path, media, "Movie (2020) [1080p] 'x' - Déjà.vu.fr.srt")
    assert sidecar.language == "fr"


def test_the_subtitle_marker_is_a_flag(tmp_path: Path) -> None:
    # A marker that is also a code ("ta", Tamil) is read as the marker, not as a language.
    [unmarked] = found(tmp_path / "a", "Movie.mkv", "Movie.en.ta.srt")
    assert unmarked.language == "ta"
    [sidecar] = found(tmp_path / "b", "Movie.mkv", "Movie.en.ta.srt", marker="ta")
    assert sidecar.language == "en"


def test_candidate_stems_cover_every_dotted_prefix() -> None:
    assert candidate_stems("A.b.en.sdh.forced.srt") == ["a.b.en.sdh.forced", "a.b.en.sdh", "a.b.en", "a.b", "a"]
    name = "Show.S01E01.720p.subgen.large-v3.English.default.forced.srt"
    assert "show.s01e01.720p" in candidate_stems(name)
    assert parse_name("Show.S01E01.720p", name) is not None


# --- the names in decisions: explain as the command prints it, and scans -----------------


@pytest.fixture
def _restore_logging() -> Iterator[None]:
    # The command configures logging onto pytest's captured stderr, which closes after the test.
    saved = structlog.get_config()
    yield
    structlog.configure(**saved)


@pytest.mark.usefixtures("_restore_logging")
def test_explain_names_the_subgen_subtitle_that_covers_the_language(
    tmp_path: Path, kit: Kit, library_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    movie = place(kit.english, library_dir / "Movie" / "Movie.mkv")
    (movie.parent / "Movie.subgen.medium.eng.srt").write_text(SRT, encoding="utf-8")
    settings = load_settings(
        database_url=f"sqlite:///{tmp_path / 'cli.db'}",
        library_paths=str(library_dir),
        target_languages="en",
        library_min_duration_seconds=0,
        _env_file=None,
    )
    parser = argparse.ArgumentParser()
    add_library_commands(parser.add_subparsers(dest="command"))
    assert LIBRARY_HANDLERS["explain"](settings, parser.parse_args(["explain", str(movie)])) == 0
    out = capsys.readouterr().out
    assert "decision: do not queue\n" in out
    assert "en: has English subtitles: Movie.subgen.medium.eng.srt (sidecar)\n" in out


async def test_a_scan_queues_nothing_that_subgen_or_a_media_server_already_subtitled(
    make_library: LibraryMaker, kit: Kit, library_dir: Path
) -> None:
    season = library_dir / "Show" / "Season 01"
    covered = {
        "Show - S01E01.mkv": "Show - S01E01.subgen.medium.eng.srt",
        "Show - S01E02.mkv": "Show - S01E02.subgen.large-v3.English.srt",
        "Show - S01E03.mkv": "Show - S01E03.subgen.small.en.srt",
        "Show - S01E04.mkv": "Show - S01E04.English.srt",
        "Show - S01E05.mkv": "Show - S01E05.en.sdh.srt",
        "Show - S01E06.mkv": "Subs/Show - S01E06.subgen.medium.English.srt",
    }
    for media, subtitle in covered.items():
        place(kit.english, season / media)
        (season / subtitle).parent.mkdir(exist_ok=True)
        (season / subtitle).write_text(SRT, encoding="utf-8")
    new = place(kit.english, season / "Show - S01E07.mkv")
    library = make_library(rules={"target_languages": ("en",)})

    report = await library.scan()
    assert [job.media_path for job in await make_library.jobs()] == [str(new)]
    assert report.media_files == 7

    # SubGen's subtitle for the new episode arrives: the queued job is no longer needed.
    (season / "Show - S01E07.subgen.large-v3.eng.default.srt").write_text(SRT, encoding="utf-8")
    await library.scan()
    [job] = await make_library.jobs()
    assert job.state == JobState.CANCELLED
    assert (
        job.error
        == "no longer needed: en: has English subtitles: Show - S01E07.subgen.large-v3.eng.default.srt (sidecar)"
    )


async def test_scans_and_explain_give_a_subtitle_to_the_longer_media_stem(
    make_library: LibraryMaker, kit: Kit, library_dir: Path
) -> None:
    one = place(kit.english, library_dir / "Movie.mkv")
    two = place(kit.english, library_dir / "Movie.Part2.mkv")
    (library_dir / "Movie.Part2.en.srt").write_text(SRT, encoding="utf-8")
    library = make_library(rules={"target_languages": ("en",)})
    assert (await library.explain(one)).queue
    assert not (await library.explain(two)).queue
    await library.scan()
    assert [job.media_path for job in await make_library.jobs()] == [str(one)]
