"""Jellyfin: the Webhook plugin's Generic destination, and Jellyfin's API.

Set up in Jellyfin (Dashboard > Plugins > Webhook > Add Generic Destination):
Webhook URL `http://transcriptarr:9000/webhooks/jellyfin`, notification types
"Item Added" and/or "Playback Start", item types Movies and Episodes, and either
tick "Send All Properties (ignores template)" (best: the plugin writes proper JSON)
or use this template:

    {"NotificationType": "{{NotificationType}}", "ItemId": "{{ItemId}}", "ItemType": "{{ItemType}}",
     "Name": "{{Name}}", "SeriesName": "{{SeriesName}}", "Path": "{{Path}}"}

The template leaves `{{Path}}` unescaped: on a Windows server (backslashes) drop
the "Path" line, and Transcriptarr asks Jellyfin for the path (JELLYFIN_URL and
JELLYFIN_API_KEY). With API_KEY set, add a header `X-Api-Key` to the destination.
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

_EVENTS: dict[str, EventKind] = {"itemadded": "added", "playbackstart": "played"}


def parse_webhook(data: Mapping[str, Any]) -> MediaEvent | Ignored:
    fields = folded(data)
    notification = text(fields, "notificationtype")
    if not notification:
        raise PayloadError(
            "no NotificationType: tick 'Send All Properties' in the Webhook plugin, or use the template in the docs"
        )
    kind = _EVENTS.get(notification.lower())
    if kind is None:
        return Ignored(f"Jellyfin {notification} events are not handled: only ItemAdded and PlaybackStart")
    raw_id = text(fields, "itemid")
    if not raw_id:
        raise PayloadError(f"a {notification} event without an ItemId")
    shape = item_shape(text(fields, "itemtype"), "Jellyfin")
    if isinstance(shape, Ignored):
        return shape
    name, series = text(fields, "name"), text(fields, "seriesname")
    return MediaEvent(
        server="jellyfin",
        kind=kind,
        item_id=item_id(raw_id, "Jellyfin"),
        path=text(fields, "path") or None,
        title=f"{series} - {name}" if series and name else name or raw_id,
        container=shape,
    )


def jellyfin_server(url: str, api_key: str) -> MediaBrowserServer:
    # The Authorization scheme works on every Jellyfin 10.x; 10.11 turns the legacy X-Emby-Token off.
    headers = {"Authorization": f'MediaBrowser Token="{api_key}"', "Accept": "application/json"}
    api = ServerApi("Jellyfin", url, headers, url_setting="JELLYFIN_URL", key_setting="JELLYFIN_API_KEY")
    return MediaBrowserServer("jellyfin", api)
