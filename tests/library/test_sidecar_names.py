"""Subtitle names as people have them: Plex, Jellyfin, Emby, Bazarr and SubGen write them, on real files.

Sources read for the table: Jellyfin's ExternalPathParser and its tests (flags `default`,
`forced`/`foreign`, `sdh`/`cc`/`hi`, free titles, the last language wins, `hi` alone is
Hindi), the Jellyfin and Emby docs (`Film.default.en.forced.ass`, `Home Alone.spanish.srt`),
Bazarr's subliminal_patch `_search_external_subtitles` (`pt-BR`, `zh-TW`, `chs`/`cht`,
`hi`/`cc`/`sdh`/`normal` tags) and SubGen's `name_subtitle` (`.subgen.<model>.<language>`,
each of `SHOW_IN_SUBNAME_SUBGEN`/`SHOW_IN_SUBNAME_MODEL` may be off).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from transcriptarr.library.sidecars import find_sidecars, parse_name
from transcriptarr.policy.language_names import NATIVE_NAMES
from transcriptarr.policy.languages import language_in_name, normalize_language

SRT = "1\n00:00:01,000 --> 00:00:02,000\nHello\n"
SUBGEN_TABLE = Path(__file__).with_name("subgen_language_codes.tsv")

# name -> (language or None, forced, hearing impaired), all for Movie.mkv.
NAMES = [
    # SubGen: .subgen.<model>.<language>, in its five language forms and with its switches off.
    ("Movie.subgen.medium.eng.srt", "en", False, False),  # its default: ISO_639_2_B
    ("Movie.subgen.large-v3.English.srt", "en", False, False),  # NAME
    ("Movie.subgen.medium.en.srt", "en", False, False),  # ISO_639_1
    ("Movie.subgen.medium.deu.srt", "de", False, False),  # ISO_639_2_T
    ("Movie.subgen.medium.ger.srt", "de", False, False),  # ISO_639_2_B
    ("Movie.subgen.medium.German.srt", "de", False, False),  # NAME
    ("Movie.subgen.medium.Deutsch.srt", "de", False, False),  # NATIVE
    ("Movie.subgen.large-v3-turbo.Français.srt", "fr", False, False),
    ("Movie.subgen.distil-large-v3.fre.srt", "fr", False, False),
    ("Movie.subgen.tiny.en.eng.srt", "en", False, False),  # an English-only model: "en" twice
    ("Movie.subgen.turbo.日本語.srt", "ja", False, False),
    ("Movie.subgen.small.Русский.srt", "ru", False, False),
    ("Movie.subgen.medium.hi.srt", "hi", False, False),  # ISO_639_1 Hindi: the only language part
    ("Movie.subgen.medium.no.srt", "no", False, False),  # ISO_639_1 Norwegian
    ("Movie.medium.spa.srt", "es", False, False),  # SHOW_IN_SUBNAME_SUBGEN=False
    ("Movie.subgen.jpn.srt", "ja", False, False),  # SHOW_IN_SUBNAME_MODEL=False
    # Plex, Jellyfin, Emby.
    ("Movie.en.srt", "en", False, False),
    ("Movie.eng.srt", "en", False, False),
    ("Movie.English.srt", "en", False, False),
    ("MOVIE.ENG.SDH.SRT", "en", False, True),
    ("Movie.spanish.srt", "es", False, False),
    ("Movie.spa.srt", "es", False, False),
    ("Movie.Deutsch.forced.srt", "de", True, False),
    ("Movie.pt-BR.srt", "pt", False, False),
    ("Movie.en.sdh.srt", "en", False, True),
    ("Movie.en.cc.srt", "en", False, True),
    ("Movie.en.hi.srt", "en", False, True),
    ("Movie.hi.en.srt", "en", False, True),
    ("Movie.hi.srt", "hi", False, False),
    ("Movie.en.forced.srt", "en", True, False),
    ("Movie.eng.default.forced.ass", "en", True, False),
    ("Movie.default.en.forced.ass", "en", True, False),
    ("Movie.forced.default.en.Commentary.srt", "en", True, False),
    ("Movie.foreign.srt", None, True, False),
    ("Movie.default.srt", None, False, False),
    ("Movie.srt", None, False, False),
    ("Movie.Subs for Chinese Audio.eng.srt", "en", False, False),
    ("Movie.Director's Commentary.srt", None, False, False),
    # Bazarr.
    ("Movie.pt-BR.hi.srt", "pt", False, True),
    ("Movie.zh-TW.srt", "zh", False, False),
    ("Movie.zh.forced.srt", "zh", True, False),
    ("Movie.chs.srt", "zh", False, False),
    ("Movie.cht.ass", "zh", False, False),
    ("Movie.简体.ass", "zh", False, False),
    ("Movie.en.normal.srt", "en", False, False),
    ("Movie.fr.sdh.forced.srt", "fr", True, True),
    # Words that are also codes: a language only when no other language part is there.
    ("Movie.it.srt", "it", False, False),
    ("Movie.it.hi.srt", "it", False, True),
    ("Movie.en.no.srt", "en", False, False),
    ("Movie.no.sdh.srt", "no", False, True),
    # Several languages: the last wins.
    ("Movie.fr.en.srt", "en", False, False),
    ("Movie.English.ger.srt", "de", False, False),
    # Parts that are no language: numbers, release groups, tools, flags joined to the language.
    ("Movie.2.en.srt", "en", False, False),
    ("Movie.en.1.srt", "en", False, False),
    ("Movie.RARBG.eng.srt", "en", False, False),
    ("Movie.sub.en.srt", "en", False, False),
    ("Movie.en-sdh.srt", "en", False, True),
    ("Movie.eng_forced.srt", "en", True, False),
    ("Movie.web-dl.srt", None, False, False),
]


@pytest.mark.parametrize(("name", "language", "forced", "hearing_impaired"), NAMES)
def test_real_world_names(
    tmp_path: Path, name: str, language: str | None, forced: bool, hearing_impaired: bool
) -> None:
    (tmp_path / "Movie.mkv").write_bytes(b"media")
    (tmp_path / name).write_text(SRT, encoding="utf-8")
    [sidecar] = find_sidecars(str(tmp_path / "Movie.mkv"))
    assert (sidecar.path, sidecar.language, sidecar.forced, sidecar.hearing_impaired) == (
        str(tmp_path / name),
        language,
        forced,
        hearing_impaired,
    )


def test_the_table_is_large_enough() -> None:
    assert len(NAMES) >= 40
    assert len({name.lower() for name, *_ in NAMES}) == len(NAMES), "no name twice"


def _subgen_rows() -> list[list[str]]:
    lines = SUBGEN_TABLE.read_text(encoding="utf-8").splitlines()
    return [line.split("\t") for line in lines if line and not line.startswith("#")]


@pytest.mark.parametrize(
    ("naming_type", "column"), [("ISO_639_1", 1), ("ISO_639_2_T", 2), ("ISO_639_2_B", 3), ("NAME", 4), ("NATIVE", 5)]
)
@pytest.mark.parametrize("model", ["medium", "large-v3", "tiny.en"])
def test_every_subgen_language_in_every_subgen_naming_type(naming_type: str, column: int, model: str) -> None:
    rows = _subgen_rows()
    assert len(rows) == 101
    wrong = []
    for row in rows:
        if model.endswith(".en") and row[1] != "en":
            continue  # an English-only model writes English only
        name = f"Show - S01E01.subgen.{model}.{row[column]}.srt"  # SubGen's name_subtitle
        parsed = parse_name("Show - S01E01", name)
        if parsed is None or parsed.language != normalize_language(row[1]):
            wrong.append((row[0], name, parsed))
    assert wrong == [], f"{naming_type}: {wrong}"


def test_native_names_are_spelled_as_subgen_writes_them() -> None:
    for row in _subgen_rows():
        code = normalize_language(row[1])
        assert code is not None
        assert NATIVE_NAMES[code][0] == row[5], row[0]


@pytest.mark.parametrize(
    "part",
    [
        "subgen",
        "medium",
        "large-v3",
        "tiny",
        "turbo",
        "sdh",  # an ISO 639-3 code (Southern Kurdish), but a flag in a name
        "sub",  # ISO 639-3 too
        "web-dl",
        "dts-hd",
        "x264",
        "1080p",
        "RARBG",
        "Even",  # an ISO 639-3 language name
        "und",
        "zxx",
        "",
    ],
)
def test_parts_that_name_no_language(part: str) -> None:
    assert language_in_name(part) is None


@pytest.mark.parametrize(
    ("part", "language"),
    [
        ("en_US", "en"),
        ("zh-Hans", "zh"),
        ("es-419", "es"),
        ("sr-Latn", "sr"),
        ("francais", "fr"),  # accents left out
        ("ESPAÑOL", "es"),
        ("Slovene", "sl"),  # SubGen's English name; babelfish says Slovenian
        ("Farsi", "fa"),
        ("Greek", "el"),  # babelfish says Modern Greek (1453-)
        ("Cantonese", "yue"),
        ("jw", "jv"),  # Whisper's and SubGen's Javanese
        ("iw", "he"),  # the withdrawn code old files carry
        ("繁體中文", "zh"),
    ],
)
def test_parts_that_name_a_language(part: str, language: str) -> None:
    assert language_in_name(part) == language
