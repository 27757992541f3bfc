"""PATH_MAPPINGS: paths as another program sees them, turned into paths as this node sees them.

Bazarr, Plex, Jellyfin and Emby often run in other containers (or on Windows)
and name the same file differently: `/tv/Show/S01E01.mkv` there is
`/media/tv/Show/S01E01.mkv` here. Every path that arrives from outside goes
through `PathMapper.map` before it is used.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import PurePosixPath

# `C:` or `C:\`: a Windows drive, whose colon is not the pair separator.
_WINDOWS = re.compile(r"^(?:[A-Za-z]:|\\\\)")


class PathMappingError(ValueError):
    """A PATH_MAPPINGS entry that cannot be understood."""


@dataclass(frozen=True)
class PathMapping:
    source: str  # as the other program writes it, normalised: `/` separators, no trailing `/`
    target: str  # as this node sees it
    windows: bool  # the source is a Windows path: compare without regard to case

    def applies_to(self, path: str) -> bool:
        probe, prefix = (path.lower(), self.source.lower()) if self.windows else (path, self.source)
        return probe == prefix or probe.startswith(prefix.rstrip("/") + "/")

    def apply(self, path: str) -> str:
        rest = path[len(self.source) :].lstrip("/")
        return str(PurePosixPath(self.target, rest)) if rest else self.target


def _normalise(path: str) -> tuple[str, bool]:
    windows = bool(_WINDOWS.match(path)) or "\\" in path
    if windows:
        path = path.replace("\\", "/")
    if len(path) > 1:
        path = path.rstrip("/") or "/"
    return path, windows


def parse_mapping(text: str) -> PathMapping:
    """`from:to`; `from` may be a Windows path (`D:\\Media:/media`), `to` must be absolute."""
    cut = text.rfind(":/")
    if cut <= 0 or (cut == 1 and _WINDOWS.match(text)):
        raise PathMappingError(
            f"'{text}' is not a mapping like /data/tv:/media/tv or D:\\Media:/media (the part after ':' must be "
            "an absolute path on this machine)"
        )
    source, windows = _normalise(text[:cut].strip())
    target = text[cut + 1 :].strip()
    if len(target) > 1:
        target = target.rstrip("/")
    if not source:
        raise PathMappingError(f"'{text}' has nothing before ':'; write it as /other/path:/local/path")
    return PathMapping(source, target, windows)


class PathMapper:
    """Applies the longest matching mapping (so `/data/tv` beats `/data`); unmapped paths pass unchanged."""

    def __init__(self, mappings: Iterable[PathMapping] = ()) -> None:
        self.mappings = sorted(mappings, key=lambda m: len(m.source), reverse=True)

    @classmethod
    def parse(cls, entries: Iterable[str]) -> PathMapper:
        return cls(parse_mapping(entry) for entry in entries)

    def map(self, path: str) -> str:
        for mapping in self.mappings:
            normalised = _normalise(path)[0] if mapping.windows else path
            if mapping.applies_to(normalised):
                return mapping.apply(normalised)
        return path

    def __bool__(self) -> bool:
        return bool(self.mappings)
