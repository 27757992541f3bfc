"""The API that Jellyfin and Emby share (both grew from Media Browser): items with their paths, and refresh.

    GET  /Items?Ids=ID&Fields=Path                                   the item, with the file it plays
    GET  /Items?ParentId=ID&Recursive=true&IncludeItemTypes=Episode  a series' or season's episodes
    POST /Items/ID/Refresh?MetadataRefreshMode=Default...            look at the item's files again

Emby serves the same under /emby. An API key (Dashboard > API Keys) may call
/Items without a user id; both servers accept it without regard to id case or dashes.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from transcriptarr.integrations.mediaservers.events import CONTAINER_TYPES, MediaFile, ServerName, text
from transcriptarr.integrations.mediaservers.http import ItemNotFound, MediaServerError, ServerApi

# A refresh that finds new sidecar subtitles without downloading metadata or images again.
REFRESH_PARAMS = {
    "Recursive": "true",
    "MetadataRefreshMode": "Default",
    "ImageRefreshMode": "Default",
    "ReplaceAllMetadata": "false",
    "ReplaceAllImages": "false",
}
_SMALL_ANSWER = {"Fields": "Path", "EnableImages": "false", "EnableUserData": "false"}


class MediaBrowserServer:
    def __init__(self, name: ServerName, api: ServerApi) -> None:
        self.name = name
        self.api = api

    async def files(self, item_id: str) -> list[MediaFile]:
        """The item's file, or the files of its episodes when it is a series or a season."""
        item = await self._item(item_id)
        children = [item]
        if text(item, "Type").lower() in CONTAINER_TYPES:
            params = {"ParentId": item_id, "Recursive": "true", "IncludeItemTypes": "Episode", **_SMALL_ANSWER}
            children = self._items(await self.api.call("GET", "/Items", params=params, item=f"item {item_id}"))
        # Episodes the server knows of but nobody has (LocationType Virtual) have no Path.
        return [
            MediaFile(text(child, "Id") or item_id, path, title(child))
            for child in children
            if (path := text(child, "Path"))
        ]

    async def refresh(self, item_id: str) -> None:
        await self.api.call("POST", f"/Items/{quote(item_id)}/Refresh", params=REFRESH_PARAMS, item=f"item {item_id}")

    async def close(self) -> None:
        await self.api.close()

    async def _item(self, item_id: str) -> dict[str, Any]:
        answer = await self.api.call("GET", "/Items", params={"Ids": item_id, **_SMALL_ANSWER}, item=f"item {item_id}")
        items = self._items(answer)
        if not items:
            raise ItemNotFound(f"{self.api.where} has no item {item_id}")
        return items[0]

    def _items(self, answer: Any) -> list[dict[str, Any]]:
        items = answer.get("Items") if isinstance(answer, dict) else None
        if not isinstance(items, list):
            raise MediaServerError(f"{self.api.where} answered /Items without an Items list", retry=False)
        return [item for item in items if isinstance(item, dict)]


def title(item: dict[str, Any]) -> str:
    """'Show - Episode' for an episode, the name otherwise."""
    name = text(item, "Name", "Id")
    series = text(item, "SeriesName")
    return f"{series} - {name}" if series else name
