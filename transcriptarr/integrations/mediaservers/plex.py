"""Plex: its webhooks (a Plex Pass feature), and Plex's API.

Set up in Plex (Settings > Webhooks > Add Webhook): URL
`http://transcriptarr:9000/webhooks/plex?apikey=KEY` (Plex cannot send headers;
the `apikey` part only with API_KEY set). Plex posts multipart/form-data: a
`payload` part with the event as JSON and, for some events, a `thumb` JPEG:

    {"event": "library.new", "user": true, "owner": true, "Account": {...}, "Server": {...},
     "Metadata": {"librarySectionType": "show", "ratingKey": "1936545", "type": "episode", ...}}

The payload names no file, so PLEX_URL and PLEX_TOKEN are needed to look it up:

    GET /library/metadata/KEY            the item; Media[].Part[].file are its files
    GET /library/metadata/KEY/allLeaves  a show's or season's episodes
    PUT /library/metadata/KEY/refresh    look at the item again (finds the new subtitle)

An episode's metadata names its show (`grandparentRatingKey`), its season's number
(`parentIndex`) and its own (`index`): what PLEX_QUEUE_AHEAD needs to find the episodes after
it among the show's `allLeaves` (queue_ahead.py).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import quote

from transcriptarr.integrations.mediaservers.events import (
    CONTAINER_TYPES,
    EventKind,
    Ignored,
    MediaEvent,
    MediaFile,
    PayloadError,
    ServerName,
    item_shape,
    text,
)
from transcriptarr.integrations.mediaservers.http import ItemNotFound, MediaServerError, ServerApi
from transcriptarr.integrations.mediaservers.queue_ahead import EpisodeNumber, QueueAhead, episodes_after

_EVENTS: dict[str, EventKind] = {"library.new": "added", "media.play": "played"}


def rating_key(raw: str) -> str:
    if not raw.isascii() or not raw.isdigit() or len(raw) > 19:
        raise PayloadError(f"{raw[:80]!r} is not a Plex ratingKey (a number)")
    return raw


def parse_webhook(data: Mapping[str, Any]) -> MediaEvent | Ignored:
    event = text(data, "event")
    if not event:
        raise PayloadError("no event: this does not look like a Plex webhook payload")
    kind = _EVENTS.get(event.lower())
    if kind is None:
        return Ignored(f"Plex {event} events are not handled: only library.new and media.play")
    metadata = data.get("Metadata")
    if not isinstance(metadata, dict):
        raise PayloadError(f"a {event} event without a Metadata object")
    raw_key = text(metadata, "ratingKey")
    if not raw_key:
        raise PayloadError(f"a {event} event whose Metadata has no ratingKey")
    shape = item_shape(text(metadata, "type"), "Plex")
    if isinstance(shape, Ignored):
        return shape
    return MediaEvent(
        server="plex",
        kind=kind,
        item_id=rating_key(raw_key),
        path=None,
        title=title(metadata) or raw_key,
        container=shape,
    )


def title(metadata: Mapping[str, Any]) -> str:
    """'Show - Episode' for an episode, the title otherwise."""
    name = text(metadata, "title")
    show = text(metadata, "grandparentTitle") if text(metadata, "type") == "episode" else ""
    return f"{show} - {name}" if show and name else name


class PlexServer:
    name: ServerName = "plex"

    def __init__(self, api: ServerApi) -> None:
        self.api = api

    async def files(self, item_id: str) -> list[MediaFile]:
        """The item's files (a film in two parts has two), or its episodes' for a show or season."""
        items = await self._metadata(f"/library/metadata/{quote(item_id)}", item_id)
        if not items:
            raise ItemNotFound(f"{self.api.where} has no item {item_id}")
        if text(items[0], "type").lower() in CONTAINER_TYPES:
            items = await self._metadata(f"/library/metadata/{quote(item_id)}/allLeaves", item_id)
        return [found for item in items for found in _files_of(item, item_id)]

    async def episodes_after(self, item_id: str, scope: QueueAhead) -> list[MediaFile]:
        """The files of the episodes after episode `item_id` that `scope` asks for, in viewing order
        (none when the item is not an episode with a season and episode number)."""
        items = await self._metadata(f"/library/metadata/{quote(item_id)}", item_id)
        if not items or text(items[0], "type").lower() != "episode":
            return []
        current, show = _episode_number(items[0]), text(items[0], "grandparentRatingKey")
        if current is None or not show:
            return []
        leaves = await self._metadata(f"/library/metadata/{quote(show)}/allLeaves", show)
        numbered = [(number, leaf) for leaf in leaves if (number := _episode_number(leaf)) is not None]
        return [found for leaf in episodes_after(current, numbered, scope) for found in _files_of(leaf, item_id)]

    async def refresh(self, item_id: str) -> None:
        await self.api.call("PUT", f"/library/metadata/{quote(item_id)}/refresh", item=f"item {item_id}")

    async def close(self) -> None:
        await self.api.close()

    async def _metadata(self, path: str, item_id: str) -> list[dict[str, Any]]:
        answer = await self.api.call("GET", path, item=f"item {item_id}")
        container = answer.get("MediaContainer") if isinstance(answer, dict) else None
        if not isinstance(container, dict):
            raise MediaServerError(f"{self.api.where} answered {path} without a MediaContainer", retry=False)
        return _objects(container.get("Metadata"))


def _files_of(item: Mapping[str, Any], fallback_id: str) -> list[MediaFile]:
    """An item's files: a film in two parts has two."""
    return [
        MediaFile(text(item, "ratingKey") or fallback_id, path, title(item))
        for media in _objects(item.get("Media"))
        for part in _objects(media.get("Part"))
        if (path := text(part, "file"))
    ]


def _episode_number(item: Mapping[str, Any]) -> EpisodeNumber | None:
    season, episode = text(item, "parentIndex"), text(item, "index")
    if not (season.isdigit() and episode.isdigit()):
        return None
    return EpisodeNumber(int(season), int(episode))


def _objects(value: Any) -> list[dict[str, Any]]:
    return [item for item in value if isinstance(item, dict)] if isinstance(value, list) else []


def plex_server(url: str, token: str) -> PlexServer:
    headers = {"X-Plex-Token": token, "Accept": "application/json"}
    return PlexServer(ServerApi("Plex", url, headers, url_setting="PLEX_URL", key_setting="PLEX_TOKEN"))
