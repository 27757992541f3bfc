"""Emby: its built-in webhooks (Emby 4.7+), and Emby's API.

Set up in Emby (Settings > Notifications > Add Notification > Webhooks): URL
`http://transcriptarr:9000/webhooks/emby?apikey=KEY` (the `apikey` part only with
API_KEY set), events "New Media Added" and/or "Playback Start". Emby sends the
event as a JSON body or, depending on version and the "Request content type"
setting, as multipart/form-data with the JSON in a part named `data`; both work:

    {"Event": "library.new", "Item": {"Id": "751181", "Type": "Movie", "Name": "...",
     "Path": "/mnt/movies/Film (2020)/Film (2020).mkv", ...}, "Server": {...}}
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from transcriptarr.integrations.mediaservers.events import (
    EventKind,
    Ignored,
    MediaEvent,
    PayloadError,
    folded,
    item_id,
    item_shape,
    text,
)
from transcriptarr.integrations.mediaservers.http import ServerApi
from transcriptarr.integrations.mediaservers.mediabrowser import MediaBrowserServer

_EVENTS: dict[str, EventKind] = {"library.new": "added", "playback.start": "played"}


def parse_webhook(data: Mapping[str, Any]) -> MediaEvent | Ignored:
    fields = folded(data)
    event = text(fields, "event")
    if not event:
        raise PayloadError("no Event: this does not look like an Emby webhook")
    kind = _EVENTS.get(event.lower())
    if kind is None:
        return Ignored(f"Emby {event} events are not handled: only library.new and playback.start")
    item = fields.get("item")
    if not isinstance(item, dict):
        raise PayloadError(f"a {event} event without an Item object")
    item = folded(item)
    raw_id = text(item, "id")
    if not raw_id:
        raise PayloadError(f"a {event} event whose Item has no Id")
    shape = item_shape(text(item, "type"), "Emby")
    if isinstance(shape, Ignored):
        return shape
    name, series = text(item, "name"), text(item, "seriesname")
    return MediaEvent(
        server="emby",
        kind=kind,
        item_id=item_id(raw_id, "Emby"),
        path=text(item, "path") or None,
        title=f"{series} - {name}" if series and name else name or raw_id,
        container=shape,
    )


def emby_server(url: str, api_key: str) -> MediaBrowserServer:
    base = url.rstrip("/")
    if not base.lower().endswith("/emby"):
        base += "/emby"  # EMBY_URL is the server's address; the API lives under /emby
    headers = {"X-Emby-Token": api_key, "Accept": "application/json"}
    api = ServerApi("Emby", base, headers, url_setting="EMBY_URL", key_setting="EMBY_API_KEY")
    return MediaBrowserServer("emby", api)
