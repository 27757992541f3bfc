"""File names the service never touches: unsafe names, downloads in progress, hidden files, its own temp files.

The library's scan and rules, the paths clients name (policy/confinement.py) and the subtitle writer's
temporary files (subtitles/writer.py) share these rules.
"""

from __future__ import annotations

import re
from typing import Final

IGNORE_MARKER = ".transcriptarr-ignore"

# In the name of a subtitle being written (".<target name>.transcriptarr-tmp-<random>", subtitles/writer.py):
# never media, and swept once stale.
TEMP_MARKER: Final = ".transcriptarr-tmp-"

# Names that download clients, copy tools and editors give files while they are written.
PARTIAL_SUFFIXES = (
    ".part",  # Firefox, wget, youtube-dl, rsync --partial-dir
    ".partial",
    ".!qb",  # qBittorrent
    ".!ut",  # uTorrent
    ".!bt",  # BitTorrent
    ".bc!",  # BitComet
    ".crdownload",  # Chrome
    ".download",  # Safari
    ".opdownload",  # Opera
    ".filepart",  # WinSCP
    ".tmp",
    ".temp",
    ".aria2",  # aria2 control file
    "._mp",  # Transmission (older)
    ".syncthing",
    "~",
)

# Control characters (newlines included) and bytes that are not UTF-8 (decoded by Python
# as lone surrogates): such a name cannot be stored, logged or passed on reliably.
_UNSAFE = re.compile(r"[\x00-\x1f\x7f\ud800-\udfff]")


def unsafe_name_reason(name: str) -> str | None:
    found = _UNSAFE.search(name)
    if found is None:
        return None
    if "\ud800" <= found.group() <= "\udfff":
        return "its name is not valid UTF-8; rename it"
    return "its name contains a control character (e.g. a newline); rename it"


def partial_download_suffix(name: str) -> str | None:
    lower = name.lower()
    if TEMP_MARKER in lower:
        return TEMP_MARKER
    for suffix in PARTIAL_SUFFIXES:
        if lower.endswith(suffix):
            return suffix
    return None


def is_hidden(name: str) -> bool:
    """Dot files, including macOS "._Movie.mkv" resource forks that carry a media extension."""
    return name.startswith(".")
