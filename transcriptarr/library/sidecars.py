"""Subtitle files next to a media file, and what their names say.

Naming follows Plex, Jellyfin and Bazarr: `<stem>.<language>[.<flag>...].<ext>` in the
media's folder or in its `Subs`/`Subtitles` subfolder, matched case-insensitively.
The language may be a two- or three-letter code, a code with a region (`pt-BR`) or
an English name (`English`); babelfish reads all of them. Flags: `forced`; `hi`,
`sdh`, `cc` (hearing impaired); `default`; and the service's own SUBTITLE_MARKER.

`hi` is both a flag and the code for Hindi: after a language it is the flag
(`Movie.en.hi.srt`), alone it is the language (`Movie.hi.srt`).
"""

# Paths are plain str throughout the library package (index keys, tens of thousands per scan): os.path.
# ruff: noqa: PTH118, PTH119, PTH120, PTH122

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from transcriptarr.media.languages import normalize_language

SUBTITLE_EXTENSIONS = frozenset({".srt", ".ass", ".ssa", ".vtt", ".sub", ".idx", ".sup", ".lrc"})
# Bitmap formats: VobSub (.idx with its .sub) and Blu-ray PGS (.sup).
IMAGE_EXTENSIONS = frozenset({".idx", ".sup"})
SUBTITLE_FOLDERS = frozenset({"subs", "subtitles"})

_FORCED = frozenset({"forced"})
_HEARING_IMPAIRED = frozenset({"hi", "sdh", "cc"})
_NEUTRAL_FLAGS = frozenset({"default"})
# Language, then at most this many flags: enough for "en.sdh.forced.default.marker".
_MAX_FLAGS = 4


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
    of comparing every subtitle with every media file of a folder.
    """
    base = name[: name.rfind(".")].lower()
    stems = [base]
    for _ in range(_MAX_FLAGS + 1):
        dot = base.rfind(".")
        if dot <= 0:
            break
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
    tokens = base[len(stem) + 1 :].split(".")
    flags = _NEUTRAL_FLAGS | _FORCED | _HEARING_IMPAIRED | ({marker.lower()} if marker else set())
    found: set[str] = set()
    # Flags come last; the token left in front of them is the language.
    while len(tokens) > 1 and tokens[-1].lower() in flags:
        found.add(tokens.pop().lower())
    if len(tokens) != 1:
        return None
    language = normalize_language(tokens[0])
    if language is None:
        return None
    return ParsedName(language, bool(found & _FORCED), bool(found & _HEARING_IMPAIRED))


def match_sidecars(
    media_path: str,
    names_here: Iterable[str],
    names_in_subfolders: Mapping[str, Sequence[str]] | None = None,
    *,
    marker: str | None = None,
) -> list[Sidecar]:
    """The subtitles of `media_path` among the given folder listings.

    `names_in_subfolders` maps a subtitle folder's name as found ("Subs") to its file names.
    """
    folder = os.path.dirname(media_path)
    stem = os.path.splitext(os.path.basename(media_path))[0]
    found = _match_in(folder, stem, list(names_here), marker)
    for subfolder, names in (names_in_subfolders or {}).items():
        found += _match_in(os.path.join(folder, subfolder), stem, list(names), marker)
    return found


def find_sidecars(media_path: str, *, marker: str | None = None) -> list[Sidecar]:
    """List the media's folder (and its subtitle folders) and match; for single files."""
    folder = os.path.dirname(media_path)
    here: list[str] = []
    subfolders: dict[str, list[str]] = {}
    try:
        with os.scandir(folder) as entries:
            for entry in entries:
                if entry.is_dir() and entry.name.lower() in SUBTITLE_FOLDERS:
                    subfolders[entry.name] = _file_names(entry.path)
                elif subtitle_extension(entry.name):
                    here.append(entry.name)
    except OSError:
        return []
    return match_sidecars(media_path, here, subfolders, marker=marker)


def _file_names(folder: str) -> list[str]:
    try:
        with os.scandir(folder) as entries:
            return [entry.name for entry in entries if subtitle_extension(entry.name)]
    except OSError:
        return []


def _match_in(folder: str, stem: str, names: list[str], marker: str | None) -> list[Sidecar]:
    lower_names = {name.lower() for name in names}
    found = []
    for name in sorted(names):
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
