"""The media servers, one entry each: adding a server is one module (its webhook parser and API client) plus one
entry in SERVERS.

Everything else reads this table: the webhook routes (POST /webhooks/{route}, api/webhooks.py, and SubGen's
POST /{route}, api/subgen_routes.py), the OpenAPI document of those routes (api/openapi.py), the clients made
from the settings (`server_from_settings`, `configured`), the messages that say what to set, and the refresh
after a subtitle is written (refresh.py, wired by integrations/wiring.py).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Final, Protocol

from pydantic import SecretStr

from transcriptarr.integrations.mediaservers import emby, jellyfin, plex, subgen, tautulli
from transcriptarr.integrations.mediaservers.events import Ignored, MediaEvent, MediaFile, ServerName
from transcriptarr.settings import Settings

Parser = Callable[[Mapping[str, Any]], MediaEvent | Ignored]

JSON: Final = "application/json"
MULTIPART: Final = "multipart/form-data"
_ROUTE = re.compile(r"^[a-z][a-z0-9-]*$")


class MediaServer(Protocol):
    name: ServerName

    async def files(self, item_id: str) -> list[MediaFile]:
        """The item's files, or its episodes' for a series, season or show (raises MediaServerError)."""
        ...

    async def refresh(self, item_id: str) -> None:
        """Have the server look at the item again, e.g. for a new sidecar subtitle."""
        ...

    async def close(self) -> None: ...


@dataclass(frozen=True)
class Connection:
    """A server's own API: the two settings that reach it, and the client made from them."""

    url_setting: str  # the Settings field of its address (jellyfin_url is JELLYFIN_URL)
    key_setting: str  # the Settings field of its API key or token
    client: Callable[[str, str], MediaServer]  # (address, key): a client that finds files and refreshes items

    def __post_init__(self) -> None:
        for name in (self.url_setting, self.key_setting):
            if name not in Settings.model_fields:
                raise ValueError(f"media server setting {name!r} is not a field of transcriptarr/settings.py")

    @property
    def needs(self) -> str:
        """What to set, for messages: 'JELLYFIN_URL and JELLYFIN_API_KEY'."""
        return f"{self.url_setting.upper()} and {self.key_setting.upper()}"

    def address_and_key(self, settings: Settings) -> tuple[str, str] | None:
        url, secret = getattr(settings, self.url_setting), getattr(settings, self.key_setting)
        key = secret.get_secret_value().strip() if isinstance(secret, SecretStr) else ""
        return (url, key) if isinstance(url, str) and url and key else None


@dataclass(frozen=True)
class MediaServerEntry:
    route: str  # POST /webhooks/{route}; SubGen's URL is POST /{route}
    title: str  # for people: "Jellyfin"
    parse: Parser  # its webhook body: a MediaEvent, Ignored, or PayloadError when malformed
    summary: str  # what /webhooks/{route} takes, for the OpenAPI document
    content_types: tuple[str, ...]  # what it posts (JSON, MULTIPART), in the document's order
    json_part: str | None = None  # a multipart body: the part that holds the event as JSON
    parts: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)  # a multipart body's parts, as schemas
    subgen: Parser | None = None  # SubGen's body at POST /{route}; None: SubGen has no URL for this server
    subgen_body: str = ""  # that body, for the document, when it is not the server's own
    api: Connection | None = None  # None: it has no API of its own (Tautulli's items are Plex's)

    def __post_init__(self) -> None:
        if not _ROUTE.match(self.route):
            raise ValueError(f"media server route {self.route!r} must be a lower-case name like 'jellyfin'")
        if (MULTIPART in self.content_types) != (self.json_part is not None):
            raise ValueError(f"media server {self.route!r}: give json_part exactly when it posts {MULTIPART}")


_PLEX_PARTS: Final = {
    "payload": {"type": "string", "description": "Plex: the event as JSON."},
    "thumb": {"type": "string", "format": "binary", "description": "Plex: a thumbnail (ignored)."},
}

SERVERS: Final = (
    MediaServerEntry(
        "plex",
        "Plex",
        plex.parse_webhook,
        "Plex webhooks (library.new, media.play), multipart",
        (MULTIPART, JSON),
        json_part="payload",
        parts=_PLEX_PARTS,
        subgen=plex.parse_webhook,
        api=Connection("plex_url", "plex_token", plex.plex_server),
    ),
    MediaServerEntry(
        "jellyfin",
        "Jellyfin",
        jellyfin.parse_webhook,
        "Jellyfin Webhook plugin, Generic destination (ItemAdded, PlaybackStart)",
        (JSON,),
        subgen=jellyfin.parse_webhook,
        api=Connection("jellyfin_url", "jellyfin_api_key", jellyfin.jellyfin_server),
    ),
    MediaServerEntry(
        "emby",
        "Emby",
        emby.parse_webhook,
        "Emby webhooks (library.new, playback.start), JSON or multipart",
        (JSON, MULTIPART),
        json_part="data",
        parts={"data": {"type": "string", "description": "Emby (multipart setting): the event as JSON."}},
        subgen=emby.parse_webhook,
        api=Connection("emby_url", "emby_api_key", emby.emby_server),
    ),
    MediaServerEntry(
        "tautulli",
        "Tautulli",
        tautulli.parse_webhook,
        "Tautulli Webhook agent (created, play) with the JSON data from the docs",
        (JSON,),
        subgen=subgen.parse_tautulli,
        subgen_body='{"event": "added"|"played", "file": ...}',
    ),
)

BY_ROUTE: Final = MappingProxyType({entry.route: entry for entry in SERVERS})
# The servers with an API: those a webhook's item can be looked up on and refreshed.
API_SERVERS: Final[tuple[ServerName, ...]] = tuple(entry.route for entry in SERVERS if entry.api is not None)
# The multipart parts that hold the event (Plex's `payload`, Emby's `data`).
JSON_PARTS: Final = tuple(entry.json_part for entry in SERVERS if entry.json_part is not None)


def connection(name: ServerName) -> Connection:
    """The API of a server of API_SERVERS (KeyError for another name)."""
    found = BY_ROUTE[name].api
    if found is None:
        raise KeyError(f"{name} has no API of its own in the media server table")
    return found


def configured(settings: Settings) -> tuple[ServerName, ...]:
    """The servers with both an address and a key."""
    return tuple(name for name in API_SERVERS if connection(name).address_and_key(settings) is not None)


def server_from_settings(settings: Settings, name: ServerName) -> MediaServer | None:
    """A client for this server, or None when its address or key is not set."""
    api = connection(name)
    found = api.address_and_key(settings)
    return None if found is None else api.client(*found)
