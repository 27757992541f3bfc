"""Where a subtitle for a media file is written: one pure function for every part that needs it.

The worker writes there, the Bazarr integration checks there before queueing, and the
library rules read the same names back. Light on purpose (babelfish only): the rule
engine and the CLI import it without loading faster-whisper or aiohttp.

Names, with SUBTITLE_NAME_TAGS before the language and SUBTITLE_MARKER after it::

    Movie.en.srt                   the default
    Movie.subgen.medium.eng.srt    SUBTITLE_NAME_TAGS=subgen|{model}, SUBTITLE_LANGUAGE_CODE=alpha3 (SubGen's)
    Movie.en.transcriptarr.srt     SUBTITLE_MARKER=transcriptarr
    Song.lrc                       an audio file: one lyrics file, whatever the language (AUDIO_LYRICS)
    Song.en.srt                    an audio file with AUDIO_LYRICS=false: named like a video's

Audio files are those of LIBRARY_AUDIO_EXTENSIONS and the common audio extensions, less
LIBRARY_VIDEO_EXTENSIONS (transcriptarr/policy/media_kinds.py), so that the library rules, the
worker and the Bazarr integration agree on which files get lyrics.

The language forms are SubGen's five (SUBTITLE_LANGUAGE_NAMING_TYPE): ISO 639-1
(alpha2), ISO 639-2/B (alpha3), ISO 639-2/T (alpha3t), the English name (name) and
the language's own name (native), spelled as SubGen spells them so that a library
SubGen named keeps one naming.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from pathlib import Path, PurePath
from types import MappingProxyType
from typing import TYPE_CHECKING, Final, Literal, TypeVar, get_args

from babelfish import Error as BabelfishError
from babelfish import Language

from transcriptarr.policy.media_kinds import COMMON_AUDIO_EXTENSIONS, DEFAULT_VIDEO_EXTENSIONS, audio_file_extensions

if TYPE_CHECKING:
    from transcriptarr.settings import Settings

__all__ = [
    "LANGUAGE_FORMS",
    "LanguageForm",
    "SubtitleNaming",
    "language_code",
    "language_from_label",
    "language_label",
    "lyrics_path",
    "model_label",
    "subtitle_path",
]

LanguageForm = Literal["alpha2", "alpha3", "alpha3t", "name", "native"]
CodeStyle = Literal["alpha2", "alpha3"]
LANGUAGE_FORMS: Final[tuple[str, ...]] = get_args(LanguageForm)

MODEL_PLACEHOLDER: Final = "{model}"

P = TypeVar("P", bound=PurePath)

# English names where SubGen's (and common usage) differ from ISO 639-3's reference names,
# e.g. "Greek", not "Modern Greek (1453-)". Keyed by ISO 639-3 code.
_ENGLISH_NAMES: Final = MappingProxyType(
    {
        "ell": "Greek",
        "hat": "Haitian Creole",
        "khm": "Khmer",
        "msa": "Malay",
        "nep": "Nepali",
        "oci": "Occitan",
        "pan": "Punjabi",
        "pus": "Pashto",
        "slv": "Slovene",
        "swa": "Swahili",
        "yue": "Cantonese",
    }
)

# Each Whisper language's own name, as SubGen's NATIVE naming writes it. Keyed by ISO 639-3 code.
# fmt: off
_NATIVE_NAMES: Final = MappingProxyType(
    {
    "aar": "Afar", "afr": "Afrikaans", "amh": "አማርኛ", "ara": "العربية", "asm": "অসমীয়া", "aze": "Azərbaycanca",
    "bak": "Башҡортса", "bel": "Беларуская", "bul": "Български", "ben": "বাংলা", "bod": "བོད་ཡིག",
    "bre": "Brezhoneg", "bos": "Bosanski", "cat": "Català", "ces": "Čeština", "cym": "Cymraeg", "dan": "Dansk",
    "deu": "Deutsch", "ell": "Ελληνικά", "eng": "English", "spa": "Español", "est": "Eesti", "eus": "Euskara",
    "fas": "فارسی", "fin": "Suomi", "fao": "Føroyskt", "fra": "Français", "glg": "Galego", "guj": "ગુજરાતી",
    "hau": "Hausa", "haw": "ʻŌlelo Hawaiʻi", "heb": "עברית", "hin": "हिन्दी", "hrv": "Hrvatski",
    "hat": "Kreyòl Ayisyen", "hun": "Magyar", "hye": "Հայերեն", "ind": "Bahasa Indonesia", "isl": "Íslenska",
    "ita": "Italiano", "jpn": "日本語", "jav": "ꦧꦱꦗꦮ", "kat": "ქართული", "kaz": "Қазақша", "khm": "ភាសាខ្មែរ",
    "kan": "ಕನ್ನಡ", "kor": "한국어", "lat": "Latina", "ltz": "Lëtzebuergesch", "lin": "Lingála", "lao": "ພາສາລາວ",
    "lit": "Lietuvių", "lav": "Latviešu", "mlg": "Malagasy", "mri": "Te Reo Māori", "mkd": "Македонски",
    "mal": "മലയാളം", "mon": "Монгол", "mar": "मराठी", "msa": "Bahasa Melayu", "mlt": "Malti", "mya": "မြန်မာစာ",
    "nep": "नेपाली", "nld": "Nederlands", "nno": "Nynorsk", "nor": "Norsk", "oci": "Occitan", "pan": "ਪੰਜਾਬੀ",
    "pol": "Polski", "pus": "پښتو", "por": "Português", "ron": "Română", "rus": "Русский", "san": "संस्कृतम्",
    "snd": "سنڌي", "sin": "සිංහල", "slk": "Slovenčina", "slv": "Slovenščina", "sna": "ChiShona", "som": "Soomaaliga",
    "sqi": "Shqip", "srp": "Српски", "sun": "Basa Sunda", "swe": "Svenska", "swa": "Kiswahili", "tam": "தமிழ்",
    "tel": "తెలుగు", "tgk": "Тоҷикӣ", "tha": "ไทย", "tuk": "Türkmençe", "tgl": "Tagalog", "tur": "Türkçe",
    "tat": "Татарча", "ukr": "Українська", "urd": "اردو", "uzb": "Oʻzbek", "vie": "Tiếng Việt", "yid": "ייִדיש",
    "yor": "Yorùbá", "zho": "中文", "yue": "粵語",
    }
)
# fmt: on

# Whisper's codes that are not ISO 639 ("jw" is Whisper's Javanese).
_WHISPER_ALIASES: Final = MappingProxyType({"jw": "jv"})


@dataclass(frozen=True)
class SubtitleNaming:
    """How subtitle files are named (SUBTITLE_FORMAT, SUBTITLE_LANGUAGE_CODE, SUBTITLE_NAME_TAGS, SUBTITLE_MARKER,
    AUDIO_LYRICS with the audio extensions)."""

    fmt: str = "srt"
    language_form: LanguageForm = "alpha2"
    tags: tuple[str, ...] = ()  # before the language, {model} already replaced
    marker: str | None = None  # after the language
    # Media with these extensions get one <stem>.lrc; empty with AUDIO_LYRICS=false.
    lyrics_extensions: frozenset[str] = COMMON_AUDIO_EXTENSIONS

    @classmethod
    def from_settings(cls, settings: Settings) -> SubtitleNaming:
        model = model_label(settings.whisper_model)
        video = settings.library_video_extensions
        audio = audio_file_extensions(
            DEFAULT_VIDEO_EXTENSIONS if video is None else video, settings.library_audio_extensions
        )
        return cls(
            fmt=settings.subtitle_format,
            language_form=settings.subtitle_language_code,
            tags=tuple(tag.replace(MODEL_PLACEHOLDER, model) for tag in settings.subtitle_name_tags),
            marker=settings.subtitle_marker,
            lyrics_extensions=audio if settings.audio_lyrics else frozenset(),
        )

    def gets_lyrics(self, media: PurePath) -> bool:
        """An audio file while AUDIO_LYRICS is on: one .lrc, whatever the language."""
        return media.suffix.lower() in self.lyrics_extensions

    def format_for(self, media: PurePath) -> str:
        """What the writer renders for `media`: lrc for lyrics, else SUBTITLE_FORMAT."""
        return "lrc" if self.gets_lyrics(media) else self.fmt.lower().lstrip(".")


def subtitle_path(media: Path, language: str, naming: SubtitleNaming) -> Path:
    """The subtitle file for ``media`` in ``language``: ``<stem>[.<tags>].<lang>[.<marker>].<fmt>``, or
    ``<stem>.lrc`` for an audio file (AUDIO_LYRICS). Raises ValueError for a name part that is not a plain name."""
    if naming.gets_lyrics(media):
        return lyrics_path(media)
    parts = [*naming.tags, language_label(language, naming.language_form)]
    parts += [naming.marker] if naming.marker else []
    parts.append(naming.format_for(media))
    for part in parts:
        check_name_part(part)
    return media.with_name(".".join([media.stem, *parts]))


def lyrics_path(media: P) -> P:
    """The one lyrics file of an audio file (AUDIO_LYRICS): ``Song.mp3`` -> ``Song.lrc``."""
    return media.with_suffix(".lrc")


def language_code(language: str, code_style: CodeStyle = "alpha2") -> str:
    """Normalise a language code for file names (``en`` <-> ``eng``).

    alpha2 is ISO 639-1, falling back to the 3-letter code where a language has none
    (``haw``); alpha3 is ISO 639-2/B as Plex, Emby and Bazarr read it (``fre``, ``ger``),
    falling back to ISO 639-3 (``yue``). Codes babelfish does not know (or with a
    region, ``pt-BR``) are returned as given.
    """
    parsed = _parse(language)
    if parsed is None:
        return language.strip()
    if code_style == "alpha2":
        with contextlib.suppress(BabelfishError):
            return str(parsed.alpha2)
    with contextlib.suppress(BabelfishError):
        return str(parsed.alpha3b)
    return str(parsed.alpha3)


def language_label(language: str, form: LanguageForm = "alpha2") -> str:
    """A language as a file name says it: ``de`` -> de, ger, deu, German or Deutsch.

    Codes babelfish does not know (or with a region, ``pt-BR``) are returned as given.
    """
    if form in ("alpha2", "alpha3"):
        return language_code(language, form)
    parsed = _parse(language)
    if parsed is None:
        return language.strip()
    if form == "alpha3t":
        return str(parsed.alpha3)
    english = _ENGLISH_NAMES.get(parsed.alpha3, str(parsed.name))
    return _NATIVE_NAMES.get(parsed.alpha3, english) if form == "native" else english


def model_label(model: str) -> str:
    """WHISPER_MODEL as a name part: ``medium``, ``large-v3``; ``bundled:tiny.en`` -> tiny.en; a folder or a
    Hugging Face repository (``Systran/faster-whisper-small``) -> its last part."""
    name = model.strip().removeprefix("bundled:").replace("\\", "/").rstrip("/")
    return PurePath(name).name or name


def check_name_part(part: str) -> None:
    """Refuse anything path-like: these parts end up in a file name next to the user's media."""
    if not part or part in {".", ".."} or any(c in part for c in "/\\\0") or part != part.strip():
        raise ValueError(f"invalid subtitle file name part {part!r}: write plain text without / or \\")


def _parse(code: str) -> Language | None:
    low = code.strip().lower()
    low = _WHISPER_ALIASES.get(low, low)
    with contextlib.suppress(ValueError, BabelfishError):
        if len(low) == 2:
            return Language.fromalpha2(low)
        if len(low) == 3:
            try:
                return Language(low)  # ISO 639-3, which includes 639-2/T
            except ValueError:
                return Language.fromalpha3b(low)
    return None


def language_from_label(label: str) -> str | None:
    """The inverse of `language_label`: a code (``de``, ``ger``, ``deu``), an English name (``German``) or the
    language's own name (``Deutsch``) -> ISO 639-1 code (ISO 639-3 where there is none); None if not a language."""
    text = label.strip()
    parsed = _parse(text) or _parse(text.replace("_", "-").split("-")[0])  # pt-BR, en_US: the language
    if parsed is None:
        folded = text.casefold()
        for table in (_ENGLISH_NAMES, _NATIVE_NAMES):
            code = next((code for code, name in table.items() if name.casefold() == folded), None)
            if code is not None:
                parsed = Language(code)
                break
    if parsed is None:
        with contextlib.suppress(ValueError, BabelfishError):
            parsed = Language.fromname(text.title())
    if parsed is None or parsed.alpha3 in ("und", "zxx", "mul", "mis"):
        return None
    try:
        return str(parsed.alpha2)
    except (ValueError, BabelfishError):
        return str(parsed.alpha3)
