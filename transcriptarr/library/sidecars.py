"""Subtitle files next to a media file, and what their names say.

A subtitle of `Movie.mkv` is `Movie.<parts>.<ext>` in the media's folder or in its
`Subs`/`Subtitles` subfolder, matched case-insensitively, with any number of dotted
parts after the stem in any order: Plex, Jellyfin, Emby and Bazarr write
`Movie.en.srt`, `Movie.English.srt`, `Movie.pt-BR.srt`, `Movie.en.sdh.srt`,
`Movie.eng.default.forced.ass`; SubGen writes `Movie.subgen.medium.eng.srt`
(`.subgen`, the model, then the language in one of five forms: `en`, `deu`, `ger`,
`German`, `Deutsch`).

Each part is one of:

* a flag: `forced`, `foreign` (forced); `sdh`, `cc`, `hi` (hearing impaired);
  `default`, `full`, `normal`, `custom` and the service's own SUBTITLE_MARKER
  (no meaning here). A language with flags joined by `-` or `_` (`en-sdh`,
  `eng_forced`) is read as the language and its flags;
* a language (policy/languages.language_in_name): an ISO 639-1 or 639-2 code,
  with a region or script (`pt-BR`, `zh-Hans`), an English or a native name;
* anything else (a tool, a model name, a release group, a title such as
  `Commentary`, a number): ignored.

Which language when the parts name several, or a word that is also a code:

* Words that are also ISO 639-1 codes (`it`, `no`, `is`, `as`, `be`, `or`, `to`,
  `an`, `am`, `so`, `my`, `he`, `in`) count as a language only when no other
  language part is in the name. `hi` is the weakest: Hindi only when it is the
  only language part, otherwise the hearing-impaired flag (as Jellyfin reads it:
  `Movie.hi.srt` is Hindi, `Movie.en.hi.srt` English for the hearing impaired).
* Of the language parts left, the last one wins (Jellyfin's rule):
  `Movie.subgen.tiny.en.eng.srt` is English, `Movie.fr.en.srt` English.
* A name with no language part (`Movie.srt`, `Movie.forced.srt`) is a subtitle
  without a language: it counts for no language.

Since any part may be a title, a name that starts with a longer media stem in the
same folder belongs to that file when the caller lists the folder's other media
files (`other_media`): with `Movie.mkv` and `Movie.Part2.mkv`, `Movie.Part2.en.srt`
is Part 2's; without the listing it would also be read as Movie.mkv's.
"""

# Paths are plain str throughout the library package (index keys, tens of thousands per scan): os.path.
# ruff: noqa: PTH118, PTH119, PTH120, PTH122

from __future__ import annotations

import os
import re
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass

from transcriptarr.policy.languages import language_in_name

SUBTITLE_EXTENSIONS = frozenset({".srt", ".ass", ".ssa", ".vtt", ".sub", ".idx", ".sup", ".lrc"})
# Bitmap formats: VobSub (.idx with its .sub) and Blu-ray PGS (.sup).
IMAGE_EXTENSIONS = frozenset({".idx", ".sup"})
SUBTITLE_FOLDERS = frozenset({"subs", "subtitles"})

# Flags as Jellyfin (NamingOptions), Plex and Bazarr write them.
_FORCED = frozenset({"forced", "foreign"})
_HEARING_IMPAIRED = frozenset({"sdh", "cc", "hi"})
_NEUTRAL_FLAGS = frozenset({"default", "full", "normal", "custom"})
# English words that are also ISO 639-1 codes: a language only when no other part names one.
_WORD_CODES = frozenset({"it", "no", "is", "as", "be", "or", "to", "an", "am", "so", "my", "he", "in"})
_FLAGS = _FORCED | _HEARING_IMPAIRED | _NEUTRAL_FLAGS
_FLAG_JOINER = re.compile(r"[-_]")


@dataclass(frozen=True)
class Sidecar:
    path: str
    language: str | None  # two-letter code where there is one; None: no language in the name
    forced: bool = False
    hearing_impaired: bool = False
    image: bool = False

    @property
    def name(self) -> str:
        return os.path.basename(self.path)


@dataclass(frozen=True)
class ParsedName:
    language: str | None
    forced: bool
    hearing_impaired: bool


def subtitle_extension(name: str) -> str | None:
    """The lower-case extension if `name` is a subtitle file name, else None."""
    dot = name.rfind(".")
    if dot <= 0:
        return None
    ext = name[dot:].lower()
    return ext if ext in SUBTITLE_EXTENSIONS else None


def candidate_stems(name: str) -> list[str]:
    """Lower-case media stems a subtitle name could belong to ("a.b.en.forced.srt" -> a.b.en.forced, a.b.en, ...).

    Lets a scan group subtitle names by media stem with dictionary look-ups instead
    of comparing every subtitle with every media file of a folder. Every dotted
    prefix: any number of parts may follow the stem (`.subgen.large-v3.English`).
    """
    base = name[: name.rfind(".")].lower()
    stems = [base]
    while (dot := base.rfind(".")) > 0:
        base = base[:dot]
        stems.append(base)
    return stems


def parse_name(media_stem: str, name: str, *, marker: str | None = None) -> ParsedName | None:
    """Read `name` as a subtitle of the media called `media_stem`; None if it is not one."""
    ext = subtitle_extension(name)
    if ext is None:
        return None
    base = name[: -len(ext)]
    stem = media_stem.lower()
    if base.lower() == stem:
        return ParsedName(None, False, False)
    if not base.lower().startswith(stem + "."):
        return None
    return read_parts(base[len(stem) + 1 :].split("."), marker=marker)


def read_parts(parts: Sequence[str], *, marker: str | None = None) -> ParsedName:
    """Language and flags from the dotted parts after the stem (the rules are in the module docstring)."""
    neutral = _NEUTRAL_FLAGS | ({marker.lower()} if marker else set())
    flags: set[str] = set()
    strong: list[str] = []
    words: list[str] = []
    hindi = False
    for part in parts:
        word = part.strip().lower()
        pieces = _FLAG_JOINER.split(word)
        if len(pieces) > 1 and all(p in _FLAGS for p in pieces[1:]):
            # "en-sdh", "eng_forced": a language with its flags in one part.
            flags.update(pieces[1:])
            word = pieces[0]
        if word == "hi":
            hindi = True
        elif word in _FORCED or word in _HEARING_IMPAIRED or word in neutral:
            flags.add(word)
        elif (language := language_in_name(word)) is not None:
            (words if word in _WORD_CODES else strong).append(language)
    chosen = strong or words
    language = chosen[-1] if chosen else ("hi" if hindi else None)
    hearing_impaired = bool(flags & _HEARING_IMPAIRED) or (hindi and bool(chosen))
    return ParsedName(language, bool(flags & _FORCED), hearing_impaired)


def match_sidecars(
    media_path: str,
    names_here: Iterable[str],
    names_in_subfolders: Mapping[str, Sequence[str]] | None = None,
    *,
    marker: str | None = None,
    other_media: Iterable[str] = (),
) -> list[Sidecar]:
    """The subtitles of `media_path` among the given folder listings.

    `names_in_subfolders` maps a subtitle folder's name as found ("Subs") to its file names.
    `other_media`: names of the other media files in the folder; a subtitle whose
    name starts with a longer one of their stems is theirs, not this file's.
    """
    folder = os.path.dirname(media_path)
    stem = os.path.splitext(os.path.basename(media_path))[0]
    longer = _longer_stems(stem, other_media)
    found = _match_in(folder, stem, list(names_here), marker, longer)
    for subfolder, names in (names_in_subfolders or {}).items():
        found += _match_in(os.path.join(folder, subfolder), stem, list(names), marker, longer)
    return found


def find_sidecars(
    media_path: str, *, marker: str | None = None, media_extensions: Collection[str] = ()
) -> list[Sidecar]:
    """List the media's folder (and its subtitle folders) and match; for single files.

    `media_extensions` (".mkv", ...) tells the other media files of the folder apart.
    """
    folder = os.path.dirname(media_path)
    here: list[str] = []
    media: list[str] = []
    subfolders: dict[str, list[str]] = {}
    try:
        with os.scandir(folder) as entries:
            for entry in entries:
                if entry.is_dir() and entry.name.lower() in SUBTITLE_FOLDERS:
                    subfolders[entry.name] = _file_names(entry.path)
                elif subtitle_extension(entry.name):
                    here.append(entry.name)
                elif os.path.splitext(entry.name)[1].lower() in media_extensions:
                    media.append(entry.name)
    except OSError:
        return []
    return match_sidecars(media_path, here, subfolders, marker=marker, other_media=media)


def _file_names(folder: str) -> list[str]:
    try:
        with os.scandir(folder) as entries:
            return [entry.name for entry in entries if subtitle_extension(entry.name)]
    except OSError:
        return []


def _longer_stems(stem: str, other_media: Iterable[str]) -> list[str]:
    """Lower-case stems of the other media files that extend `stem` with dotted parts."""
    prefix = stem.lower() + "."
    stems = (os.path.splitext(name)[0].lower() for name in other_media)
    return [other for other in stems if other.startswith(prefix)]


def _match_in(folder: str, stem: str, names: list[str], marker: str | None, longer: Sequence[str]) -> list[Sidecar]:
    lower_names = {name.lower() for name in names}
    found = []
    for name in sorted(names):
        if any(name.lower().startswith(other + ".") for other in longer):
            continue  # Movie.Part2.en.srt beside Movie.Part2.mkv is Part 2's
        parsed = parse_name(stem, name, marker=marker)
        if parsed is None:
            continue
        ext = os.path.splitext(name)[1].lower()
        partner = name[: -len(ext)].lower()
        if ext == ".sub" and partner + ".idx" in lower_names:
            continue  # VobSub: the .idx stands for the pair
        if ext == ".idx" and partner + ".sub" not in lower_names:
            continue  # an .idx without its .sub has no pictures to show
        found.append(
            Sidecar(
                path=os.path.join(folder, name),
                language=parsed.language,
                forced=parsed.forced,
                hearing_impaired=parsed.hearing_impaired,
                image=ext in IMAGE_EXTENSIONS,
            )
        )
    return found
