"""Tautulli: a Webhook notification agent with a JSON body you write, for Plex without a Plex Pass.

Set up in Tautulli (Settings > Notification Agents > Add > Webhook):

- Webhook URL: `http://transcriptarr:9000/webhooks/tautulli`, method POST;
- Triggers: "Recently Added" (action `created`) and/or "Playback Start" (`play`);
- Data > JSON Data, for both triggers:

      {"action": "{action}", "rating_key": "{rating_key}", "media_type": "{media_type}",
       "title": "{title}", "file": "{file}"}

- with API_KEY set, JSON Headers: `{"X-Api-Key": "KEY"}`.

`file` is the path as Plex sees it; when it is empty (a grouped "Recently Added" of
a show or season, or a Windows path Tautulli could not put in JSON: then leave it
out) the files are looked up through PLEX_URL and PLEX_TOKEN by `rating_key`,
which is also what the refresh after writing the subtitle needs.
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
    item_shape,
    text,
)
from transcriptarr.integrations.mediaservers.plex import rating_key

# Tautulli's {action} is the notification type without "on_"; also take the names people write.
_EVENTS: dict[str, EventKind] = {
    "created": "added",
    "on_created": "added",
    "added": "added",
    "recently_added": "added",
    "play": "played",
    "on_play": "played",
    "played": "played",
}


def parse_webhook(data: Mapping[str, Any]) -> MediaEvent | Ignored:
    fields = folded(data)
    action = text(fields, "action")
    if not action:
        raise PayloadError('no "action": put "action": "{action}" in the Tautulli webhook\'s JSON data')
    kind = _EVENTS.get(action.lower())
    if kind is None:
        return Ignored(f"Tautulli {action} notifications are not handled: only created (Recently Added) and play")
    raw_key = text(fields, "rating_key", "ratingkey")
    path = text(fields, "file")
    if not raw_key and not path:
        raise PayloadError('neither "rating_key" nor "file": add "rating_key": "{rating_key}" to the JSON data')
    shape = item_shape(text(fields, "media_type"), "Tautulli")
    if isinstance(shape, Ignored):
        return shape
    if shape and not raw_key:
        raise PayloadError('a show or season without "rating_key": its episodes cannot be looked up')
    return MediaEvent(
        server="plex",
        kind=kind,
        item_id=rating_key(raw_key) if raw_key else None,
        path=None if shape else path or None,  # a show's or season's "file" is one of many
        title=text(fields, "title") or raw_key or path,
        container=shape,
    )
