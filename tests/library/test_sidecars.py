"""Subtitle files next to media: every supported name form, found in real folders."""

from __future__ import annotations

from pathlib import Path

import pytest

from transcriptarr.library.sidecars import Sidecar, candidate_stems, find_sidecars, parse_name


def found(folder: Path, media: str, *names: str, marker: str | None = None) -> list[Sidecar]:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / media).write_bytes(b"media")
    for name in names:
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("1\n00:00:00,000 --> 00:00:01,000\nhi\n")
    return find_sidecars(str(folder / media), marker=marker)


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
    names = ["Movie.Part2.en.srt", "Movie2.en.srt", "Movie.en.nfo", "Movie.xx-unknown.srt", "Other.en.srt"]
    assert found(tmp_path, "Movie.mkv", *names) == []


def test_stems_with_dots_and_odd_characters(tmp_path: Path) -> None:
    media = "Movie (2020) [1080p] 'x' - Déjà.vu.mkv"
    [sidecar] = found(tmp_path, media, "Movie (2020) [1080p] 'x' - Déjà.vu.fr.srt")
    assert sidecar.language == "fr"


def test_the_subtitle_marker_is_a_flag(tmp_path: Path) -> None:
    assert found(tmp_path / "a", "Movie.mkv", "Movie.en.tx.srt") == []
    [sidecar] = found(tmp_path / "b", "Movie.mkv", "Movie.en.tx.srt", marker="tx")
    assert sidecar.language == "en"


def test_candidate_stems_cover_language_and_flags() -> None:
    assert candidate_stems("A.b.en.sdh.forced.srt") == ["a.b.en.sdh.forced", "a.b.en.sdh", "a.b.en", "a.b", "a"]
    assert parse_name("A.b", "A.b.en.sdh.forced.srt") is not None
