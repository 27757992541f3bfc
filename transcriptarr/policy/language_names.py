"""Language names that babelfish does not know, as they appear in subtitle file names.

babelfish reads ISO codes and English names. What it lacks, written by hand here:

* native names (autonyms) of Whisper's languages: SubGen writes them with
  SUBTITLE_LANGUAGE_NAMING_TYPE=NATIVE (`Movie.subgen.medium.Deutsch.srt`), and
  people name files that way (`Movie.Español.srt`);
* English names other tools write that babelfish spells differently (SubGen's
  `Slovene`, OpenSubtitles' `Farsi`);
* the simplified/traditional Chinese tags Bazarr reads (`chs`, `cht`, `简体`, `繁體`).

Keys are matched after `fold()`: NFC, case-folded, and for Latin-script names also
without accents, so `Français`, `francais` and `FRANÇAIS` are one name.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Mapping
from types import MappingProxyType

__all__ = ["NAMED_LANGUAGES", "NATIVE_NAMES", "fold"]

# ISO 639-1 code (ISO 639-3 where there is none) -> native names; the first as SubGen spells it.
NATIVE_NAMES: Mapping[str, tuple[str, ...]] = MappingProxyType(
    {
        "aa": ("Afar",),
        "af": ("Afrikaans",),
        "am": ("አማርኛ",),
        "ar": ("العربية",),
        "as": ("অসমীয়া",),
        "az": ("Azərbaycanca", "Azərbaycan"),
        "ba": ("Башҡортса",),
        "be": ("Беларуская",),
        "bg": ("Български",),
        "bn": ("বাংলা",),
        "bo": ("བོད་ཡིག",),
        "br": ("Brezhoneg",),
        "bs": ("Bosanski",),
        "ca": ("Català",),
        "cs": ("Čeština",),
        "cy": ("Cymraeg",),
        "da": ("Dansk",),
        "de": ("Deutsch",),
        "el": ("Ελληνικά",),
        "en": ("English",),
        "es": ("Español",),
        "et": ("Eesti",),
        "eu": ("Euskara",),
        "fa": ("فارسی",),
        "fi": ("Suomi",),
        "fo": ("Føroyskt",),
        "fr": ("Français",),
        "gl": ("Galego",),
        "gu": ("ગુજરાતી",),
        "ha": ("Hausa",),
        "haw": ("ʻŌlelo Hawaiʻi",),
        "he": ("עברית",),
        "hi": ("हिन्दी", "हिंदी"),
        "hr": ("Hrvatski",),
        "ht": ("Kreyòl Ayisyen",),
        "hu": ("Magyar",),
        "hy": ("Հայերեն",),
        "id": ("Bahasa Indonesia",),
        "is": ("Íslenska",),
        "it": ("Italiano",),
        "ja": ("日本語",),
        "jv": ("ꦧꦱꦗꦮ", "Basa Jawa"),
        "ka": ("ქართული",),
        "kk": ("Қазақша",),
        "km": ("ភាសាខ្មែរ",),
        "kn": ("ಕನ್ನಡ",),
        "ko": ("한국어",),
        "la": ("Latina",),
        "lb": ("Lëtzebuergesch",),
        "ln": ("Lingála",),
        "lo": ("ພາສາລາວ",),
        "lt": ("Lietuvių",),
        "lv": ("Latviešu",),
        "mg": ("Malagasy",),
        "mi": ("Te Reo Māori",),
        "mk": ("Македонски",),
        "ml": ("മലയാളം",),
        "mn": ("Монгол",),
        "mr": ("मराठी",),
        "ms": ("Bahasa Melayu",),
        "mt": ("Malti",),
        "my": ("မြန်မာစာ",),
        "ne": ("नेपाली",),
        "nl": ("Nederlands",),
        "nn": ("Nynorsk",),
        "no": ("Norsk",),
        "oc": ("Occitan",),
        "pa": ("ਪੰਜਾਬੀ",),
        "pl": ("Polski",),
        "ps": ("پښتو",),
        "pt": ("Português",),
        "ro": ("Română",),
        "ru": ("Русский",),
        "sa": ("संस्कृतम्",),
        "sd": ("سنڌي",),
        "si": ("සිංහල",),
        "sk": ("Slovenčina",),
        "sl": ("Slovenščina",),
        "sn": ("ChiShona",),
        "so": ("Soomaaliga",),
        "sq": ("Shqip",),
        "sr": ("Српски", "Srpski"),
        "su": ("Basa Sunda",),
        "sv": ("Svenska",),
        "sw": ("Kiswahili",),
        "ta": ("தமிழ்",),
        "te": ("తెలుగు",),
        "tg": ("Тоҷикӣ",),
        "th": ("ไทย",),
        "tk": ("Türkmençe",),
        "tl": ("Tagalog",),
        "tr": ("Türkçe",),
        "tt": ("Татарча",),
        "uk": ("Українська",),
        "ur": ("اردو",),
        "uz": ("Oʻzbek",),
        "vi": ("Tiếng Việt",),
        "yi": ("ייִדיש",),
        "yo": ("Yorùbá",),
        "zh": ("中文",),
        "yue": ("粵語",),
    }
)

# English names that babelfish spells otherwise ("Slovenian", "Persian", ...).
_ENGLISH: Mapping[str, tuple[str, ...]] = {
    "sl": ("Slovene",),
    "fa": ("Farsi",),
    "nl": ("Flemish",),
    "es": ("Castilian",),
    "si": ("Sinhalese",),
    "pt": ("Brazilian",),
}

# Bazarr's simplified and traditional Chinese tags (subliminal_patch core.py).
_SIMPLIFIED = ("chs", "zhs", "hans", "简", "简中", "简体", "简体中文")
_TRADITIONAL = ("cht", "zht", "hant", "繁", "繁中", "繁体", "繁體", "繁体中文", "繁體中文")
_CHINESE: Mapping[str, tuple[str, ...]] = {"zh": _SIMPLIFIED + _TRADITIONAL}


def fold(text: str) -> str:
    """The form names are compared in: NFC, case-folded; Latin-script names without accents."""
    folded = unicodedata.normalize("NFC", text.strip()).casefold()
    bare = "".join(c for c in unicodedata.normalize("NFKD", folded) if not unicodedata.combining(c))
    # Only where that leaves plain ASCII: stripping marks from Devanagari or Thai would change the word.
    return bare if bare.isascii() else folded


def _index(*tables: Mapping[str, tuple[str, ...]]) -> MappingProxyType[str, str]:
    index: dict[str, str] = {}
    for table in tables:
        for code, names in table.items():
            for name in names:
                index[fold(name)] = code
    return MappingProxyType(index)


# Folded name -> ISO 639-1 code (ISO 639-3 where there is none).
NAMED_LANGUAGES = _index(NATIVE_NAMES, _ENGLISH, _CHINESE)
