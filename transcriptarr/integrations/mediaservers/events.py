"""What a webhook tells us, in one shape for every media server."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

EventKind = Literal["added", "played"]
# A server of the media server table (servers.py) that has an API: jellyfin, emby, plex.
ServerName = str

# Items that are one media file (lower-cased type names of Jellyfin, Emby and Plex).
FILE_TYPES = frozenset({"movie", "episode", "video", "musicvideo", "trailer", "clip", "audio", "audiobook", "track"})
# Items whose files are their episodes: expanded through the server's API.
CONTAINER_TYPES = frozenset({"series", "season", "show"})

# Ids go into URLs of the server's API: Jellyfin's are hex GUIDs (with or without
# dashes), Emby's and Plex's are numbers.
_ITEM_ID = re.compile(r"^[A-Za-z0-9-]{1,64}$")


class PayloadError(ValueError):
    """A webhook body that cannot be understood; the message says what is wrong or missing."""


@dataclass(frozen=True)
class MediaEvent:
    server: ServerName  # the media server that owns the item (Tautulli's items are Plex's)
    kind: EventKind
    item_id: str | None  # the server's id of the item; None when the payload has none (Tautulli)
    path: str | None  # the file as the server sees it, when the payload names it
    title: str
    container: bool = False  # a series, season or show: its episodes are the files


@dataclass(frozen=True)
class Ignored:
    """An event we do not act on; answered 200 so that the server does not retry it."""

    reason: str


@dataclass(frozen=True)
class MediaFile:
    """One file of an item, as the media server names it."""

    item_id: str | None
    path: str
    title: str


def text(data: Mapping[str, Any], *names: str) -> str:
    """The first of these fields that holds something, as stripped text ('' when none does).

    Template-based payloads (Jellyfin, Tautulli) render missing values as empty
    strings, so an empty field counts as absent.
    """
    for name in names:
        value = data.get(name)
        if value is None or isinstance(value, dict | list):
            continue
        found = str(value).strip()
        if found:
            return found
    return ""


def folded(data: Mapping[str, Any]) -> dict[str, Any]:
    """The object with lower-case keys: Jellyfin templates and Emby payloads vary in case."""
    return {str(key).lower(): value for key, value in data.items()}


def item_id(raw: str, server: str) -> str:
    if not _ITEM_ID.match(raw):
        raise PayloadError(f"{raw[:80]!r} is not a {server} item id")
    return raw


def item_shape(raw_type: str, server: str) -> bool | Ignored:
    """True for a container (series, season, show), False for a media file, Ignored for anything else.

    An empty type counts as a file: the server's API tells what it really is.
    """
    kind = raw_type.lower()
    if kind in CONTAINER_TYPES:
        return True
    if not kind or kind in FILE_TYPES:
        return False
    return Ignored(
        f"{server} item type '{raw_type}' is not handled: only movies, episodes, videos and audio "
        "(series, seasons and shows are expanded to their episodes)"
    )
