"""Language codes: container tags, user settings and Whisper's language set.

Everything goes through babelfish; the only hand-written data are Whisper's own
quirks (its language list, its non-ISO code ``jw`` and the names it prints) and,
for file names, the names babelfish lacks (language_names: native names, ...).
"""

from __future__ import annotations

import re
from types import MappingProxyType
from typing import Final

from babelfish import Error as BabelfishError
from babelfish import Language

from transcriptarr.policy.language_names import NAMED_LANGUAGES, fold

__all__ = ["WHISPER_LANGUAGES", "language_in_name", "normalize_language", "to_alpha3", "whisper_code", "whisper_name"]

# The languages Whisper knows, by its codes: faster_whisper.tokenizer's list, copied so that deciding about a
# language loads no faster-whisper (tests/unit/test_light_imports.py checks the copy against the installed one).
# fmt: off
WHISPER_LANGUAGES: Final = frozenset({
    "af", "am", "ar", "as", "az", "ba", "be", "bg", "bn", "bo", "br", "bs", "ca", "cs", "cy", "da", "de", "el",
    "en", "es", "et", "eu", "fa", "fi", "fo", "fr", "gl", "gu", "ha", "haw", "he", "hi", "hr", "ht", "hu", "hy",
    "id", "is", "it", "ja", "jw", "ka", "kk", "km", "kn", "ko", "la", "lb", "ln", "lo", "lt", "lv", "mg", "mi",
    "mk", "ml", "mn", "mr", "ms", "mt", "my", "ne", "nl", "nn", "no", "oc", "pa", "pl", "ps", "pt", "ro", "ru",
    "sa", "sd", "si", "sk", "sl", "sn", "so", "sq", "sr", "su", "sv", "sw", "ta", "te", "tg", "th", "tk", "tl",
    "tr", "tt", "uk", "ur", "uz", "vi", "yi", "yo", "zh", "yue",
})
# fmt: on

# Codes that mean "no particular language": und, zxx (no linguistic content),
# mul (multiple), mis (uncoded).
_NO_LANGUAGE = frozenset({"und", "zxx", "mul", "mis"})

# Withdrawn ISO 639-1 codes still found in old files and in Whisper ("jw").
_RETIRED_ALPHA2 = MappingProxyType({"iw": "he", "in": "id", "ji": "yi", "jw": "jv"})

# Where Whisper's code differs from the ISO 639-1 code babelfish gives.
_TO_WHISPER_CODE = MappingProxyType({"jv": "jw", "nb": "no"})

# Whisper's printed names where they differ from babelfish's English name
# (e.g. babelfish says "Modern Greek (1453-)", Whisper says "greek").
_WHISPER_NAMES = MappingProxyType(
    {
        "el": "greek",
        "ms": "malay",
        "ne": "nepali",
        "sw": "swahili",
        "pa": "punjabi",
        "km": "khmer",
        "oc": "occitan",
        "ht": "haitian creole",
        "ps": "pashto",
        "nn": "nynorsk",
        "my": "myanmar",
        "jw": "javanese",
        "yue": "cantonese",
    }
)

_CODE_RE = re.compile(r"^([a-z]{2,3})(?:[-_][a-z0-9_-]+)?$")

# A code in a file name: ISO 639 code, then BCP 47 script or region subtags only
# ("pt-BR", "zh-Hans", "es-419", "en_US"), so that "web-dl" or "dts-hd" are not read as codes.
_NAME_CODE_RE = re.compile(r"^([a-z]{2,3})(?:[-_](?:[a-z]{4}|[a-z]{2}|[0-9]{3}))*$")


def _from_code(code: str) -> Language | None:
    """A bare 2- or 3-letter code (lower case) as a babelfish Language."""
    converters: tuple[str, ...]
    if len(code) == 2:
        code = _RETIRED_ALPHA2.get(code, code)
        converters = ("alpha2",)
    else:
        # B before T: ffmpeg/Matroska tags are 639-2/B ("ger", "fre", "chi").
        converters = ("alpha3b", "alpha3t")
    for converter in converters:
        try:
            return Language.fromcode(code, converter)
        except (ValueError, BabelfishError):
            continue
    try:
        return Language(code)  # ISO 639-3, e.g. "yue", "cmn"
    except ValueError:
        return None


def _from_name(name: str) -> Language | None:
    try:
        return Language.fromname(name)
    except (ValueError, BabelfishError):
        pass
    for code, whisper in _WHISPER_NAMES.items():
        if whisper == name.lower():
            return _from_code(code)
    return None


def _parse(value: str) -> Language | None:
    text = value.strip()
    match = _CODE_RE.match(text.lower())
    language = _from_code(match.group(1)) if match else None
    if language is None:
        language = _from_name(text)
    if language is None or language.alpha3 in _NO_LANGUAGE:
        return None
    return language


def _short_code(language: Language) -> str:
    try:
        return str(language.alpha2)
    except (ValueError, BabelfishError):
        return str(language.alpha3)


def normalize_language(value: str | None) -> str | None:
    """Return the ISO 639-1 code (else ISO 639-3) for a code or English name.

    Accepts "en", "eng", "ger"/"deu", "pt-BR", "en_US", "English", "german".
    Returns None for empty, unknown or "no language" values (und, zxx, mul):
    media tags are messy, so callers treat None as "language unknown".
    """
    if not value:
        return None
    language = _parse(value)
    return _short_code(language) if language is not None else None


def language_in_name(part: str) -> str | None:
    """The language one dotted part of a file name names, as normalize_language's code; else None.

    Stricter than normalize_language, since any word may sit in a file name: a
    two-letter ISO 639-1 code, a three-letter ISO 639-2 code (B or T) or one of
    Whisper's own codes, each optionally with script/region subtags; an English
    name of such a language (babelfish, Whisper's names); a native name or another
    spelling from language_names. The 7,000 ISO 639-3 codes and names are left
    out: "sdh", "sub", a release group's three letters or "Even" would all be
    languages.
    """
    text = part.strip()
    match = _NAME_CODE_RE.match(text.lower())
    language = _from_name_code(match.group(1)) if match else None
    if language is None:
        named = NAMED_LANGUAGES.get(fold(text))
        language = _from_code(named) if named else _major(_from_name(text))
    if language is None or language.alpha3 in _NO_LANGUAGE:
        return None
    return _short_code(language)


def _major(language: Language | None) -> Language | None:
    """Only languages with an ISO 639-2 code or Whisper's: ISO 639-3 also names "Even" and "Label"."""
    if language is None or language.alpha3 in WHISPER_LANGUAGES:  # Whisper's own 639-3 ones: yue
        return language
    try:
        language.alpha3b  # noqa: B018 - raises for languages outside ISO 639-2
    except (ValueError, BabelfishError):
        return None
    return language


def _from_name_code(code: str) -> Language | None:
    if len(code) == 2 or code in WHISPER_LANGUAGES:
        return _from_code(code)
    for converter in ("alpha3b", "alpha3t"):
        try:
            return Language.fromcode(code, converter)
        except (ValueError, BabelfishError):
            continue
    return None


def to_alpha3(code: str, *, bibliographic: bool = True) -> str:
    """ISO 639-2 code for a language, "ger" style by default (Matroska, Bazarr).

    With ``bibliographic=False`` the terminology form ("deu") is returned.
    Languages outside ISO 639-2 get their ISO 639-3 code. Raises ValueError
    for values that are not a language.
    """
    language = _parse(code) if code else None
    if language is None:
        raise ValueError(f"not a language code or name: {code!r}")
    if bibliographic:
        try:
            return str(language.alpha3b)
        except (ValueError, BabelfishError):
            pass
    return str(language.alpha3)


def whisper_code(code: str | None) -> str | None:
    """The code Whisper uses for this language, or None if Whisper lacks it.

    Whisper's quirks: Javanese is "jw", Norwegian Bokmål is its "no". No
    merging of languages happens here (yue stays yue).
    """
    short = normalize_language(code)
    if short is None:
        return None
    short = _TO_WHISPER_CODE.get(short, short)
    return short if short in WHISPER_LANGUAGES else None


def whisper_name(code: str | None) -> str | None:
    """Whisper's lowercase English name ("english", "greek"), or None."""
    whisper = whisper_code(code)
    if whisper is None:
        return None
    if whisper in _WHISPER_NAMES:
        return _WHISPER_NAMES[whisper]
    language = _parse(whisper)
    return str(language.name).lower() if language is not None else None
