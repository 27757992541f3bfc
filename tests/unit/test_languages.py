from __future__ import annotations

import pytest
from faster_whisper.tokenizer import _LANGUAGE_CODES

from transcriptarr.policy.languages import normalize_language, to_alpha3, whisper_code, whisper_name


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("en", "en"),
        ("eng", "en"),
        ("ger", "de"),  # ISO 639-2/B, as Matroska writes it
        ("deu", "de"),  # ISO 639-2/T
        ("fre", "fr"),
        ("pt-BR", "pt"),
        ("en_US", "en"),
        ("es-419", "es"),
        ("zh-Hans-CN", "zh"),
        ("English", "en"),
        ("german", "de"),
        ("GERMAN", "de"),
        (" eng ", "en"),
        ("iw", "he"),  # withdrawn ISO code, still in old files
        ("jw", "jv"),  # Whisper's Javanese
        ("greek", "el"),  # Whisper's name; babelfish says "Modern Greek (1453-)"
        ("yue", "yue"),  # no ISO 639-1 code: alpha3 comes back
        ("haw", "haw"),
    ],
)
def test_normalize_language(value: str, expected: str) -> None:
    assert normalize_language(value) == expected


@pytest.mark.parametrize("value", [None, "", "und", "zxx", "mul", "mis", "unknown", "qaa", "xx", "Klingonish"])
def test_normalize_language_unknown_is_none(value: str | None) -> None:
    assert normalize_language(value) is None


def test_to_alpha3_prefers_bibliographic_codes() -> None:
    assert to_alpha3("de") == "ger"
    assert to_alpha3("German") == "ger"
    assert to_alpha3("de", bibliographic=False) == "deu"
    assert to_alpha3("pt-BR") == "por"
    assert to_alpha3("yue") == "yue"


@pytest.mark.parametrize("value", ["", "und", "nonsense"])
def test_to_alpha3_rejects_non_languages(value: str) -> None:
    with pytest.raises(ValueError, match="not a language"):
        to_alpha3(value)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("jav", "jw"),
        ("jv", "jw"),
        ("jw", "jw"),
        ("heb", "he"),
        ("iw", "he"),
        ("nob", "no"),  # Bokmål is Whisper's "no"
        ("nn", "nn"),  # Nynorsk stays distinct
        ("yue", "yue"),  # not folded into zh here
        ("pt-BR", "pt"),
        ("haw", "haw"),
        ("cmn", None),  # a language Whisper does not list by that code
        ("und", None),
        (None, None),
    ],
)
def test_whisper_code(value: str | None, expected: str | None) -> None:
    assert whisper_code(value) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("en", "english"),
        ("ger", "german"),
        ("el", "greek"),
        ("yue", "cantonese"),
        ("jav", "javanese"),
        ("ht", "haitian creole"),
        ("my", "myanmar"),
        ("nob", "norwegian"),
        ("und", None),
    ],
)
def test_whisper_name(value: str, expected: str | None) -> None:
    assert whisper_name(value) == expected


@pytest.mark.parametrize("code", _LANGUAGE_CODES)
def test_every_whisper_language_round_trips(code: str) -> None:
    name = whisper_name(code)
    assert whisper_code(code) == code
    assert name is not None
    assert name == name.lower()
    assert whisper_code(name) == code
