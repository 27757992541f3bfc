"""The bodies SubGen's webhook URLs take (McCloudS/subgen, subgen.py), read by our own parsers.

Each server's entry in servers.py names the parser of its SubGen URL (`subgen`):

- `/plex`: Plex's multipart `payload` (library.new, media.play): plex.py as it is;
- `/jellyfin`: the Webhook plugin's Generic destination with "Send All Properties"
  (NotificationType, ItemId, ...): jellyfin.py as it is;
- `/emby`: Emby's multipart `data` part (library.new, playback.start; the
  system.notificationtest is answered 200): emby.py as it is;
- `/tautulli`: SubGen's own JSON data, `{"event": "added"|"played", "file": "{file}",
  "filename": "{filename}", "mediatype": "{media_type}"}` sent with the header
  `source: Tautulli` (not needed here: the body says enough); the JSON data of
  our docs (`"action": "{action}"`, `rating_key`) works too;
- `/webhook`: SubGen's first, single URL (Plex's payload, until October 2023; today
  SubGen only answers GET there): here any of the four bodies, told apart by shape.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from transcriptarr.integrations.mediaservers import tautulli
from transcriptarr.integrations.mediaservers.events import Ignored, MediaEvent, PayloadError, folded, text


def parse_tautulli(data: Mapping[str, Any]) -> MediaEvent | Ignored:
    fields = folded(data)
    if text(fields, "action"):
        return tautulli.parse_webhook(data)
    event = text(fields, "event")
    if not event:
        raise PayloadError(
            'no "event": SubGen\'s Tautulli JSON data is {"event": "added", "file": "{file}"} ("played" for playback)'
        )
    path, key = text(fields, "file"), text(fields, "rating_key", "ratingkey")
    if not path and not key:
        raise PayloadError('no "file": put "file": "{file}" in the Tautulli webhook\'s JSON data')
    return tautulli.parse_webhook(
        {
            "action": event,
            "file": path,
            "rating_key": key,
            "media_type": text(fields, "mediatype", "media_type"),
            "title": text(fields, "title", "filename"),
        }
    )


def detect(data: Mapping[str, Any]) -> str:
    """Which server sent this body to `/webhook`, by the fields only that server writes: its route in servers.py.

    SubGen's four only: /webhook is SubGen's, and a server added later has its own URLs.
    """
    fields = folded(data)
    if "notificationtype" in fields:
        return "jellyfin"
    if "metadata" in fields or "account" in fields:
        return "plex"
    if "item" in fields or "Event" in data:  # Emby writes PascalCase, Plex and Tautulli lower case
        return "emby"
    if {"action", "event", "file"} & fields.keys():
        return "tautulli"
    raise PayloadError(
        "cannot tell which server sent this (no NotificationType, Metadata, Item or event field): "
        "point Plex at /plex, Jellyfin at /jellyfin, Emby at /emby and Tautulli at /tautulli"
    )
