"""The media servers the settings configure, as clients with one interface."""

from __future__ import annotations

from typing import Protocol

from transcriptarr.integrations.mediaservers.emby import emby_server
from transcriptarr.integrations.mediaservers.events import MediaFile, ServerName
from transcriptarr.integrations.mediaservers.jellyfin import jellyfin_server
from transcriptarr.integrations.mediaservers.plex import plex_server
from transcriptarr.settings import Settings

SERVERS: tuple[ServerName, ...] = ("jellyfin", "emby", "plex")
# What to set for each server, for messages.
SETTINGS: dict[ServerName, str] = {
    "jellyfin": "JELLYFIN_URL and JELLYFIN_API_KEY",
    "emby": "EMBY_URL and EMBY_API_KEY",
    "plex": "PLEX_URL and PLEX_TOKEN",
}


class MediaServer(Protocol):
    name: ServerName

    async def files(self, item_id: str) -> list[MediaFile]:
        """The item's files, or its episodes' for a series, season or show (raises MediaServerError)."""
        ...

    async def refresh(self, item_id: str) -> None:
        """Have the server look at the item again, e.g. for a new sidecar subtitle."""
        ...

    async def close(self) -> None: ...


def configured(settings: Settings) -> tuple[ServerName, ...]:
    """The servers with both an address and a key."""
    return tuple(name for name in SERVERS if _address_and_key(settings, name) is not None)


def server_from_settings(settings: Settings, name: ServerName) -> MediaServer | None:
    """A client for this server, or None when its address or key is not set."""
    found = _address_and_key(settings, name)
    if found is None:
        return None
    url, key = found
    if name == "jellyfin":
        return jellyfin_server(url, key)
    if name == "emby":
        return emby_server(url, key)
    return plex_server(url, key)


def _address_and_key(settings: Settings, name: ServerName) -> tuple[str, str] | None:
    url, secret = {
        "jellyfin": (settings.jellyfin_url, settings.jellyfin_api_key),
        "emby": (settings.emby_url, settings.emby_api_key),
        "plex": (settings.plex_url, settings.plex_token),
    }[name]
    key = secret.get_secret_value().strip() if secret is not None else ""
    return (url, key) if url and key else None
