"""A fake Jellyfin, Emby or Plex on 127.0.0.1, in a thread of its own (the tests and the service block).

It answers the API calls Transcriptarr makes, the way the real servers do:

- credentials as each server takes them (Jellyfin `Authorization: MediaBrowser
  Token="..."`, Emby `X-Emby-Token`, Plex `X-Plex-Token`), 401 otherwise;
- items by id with the path the server sees (Jellyfin/Emby `GET /Items?Ids=...`,
  Plex `GET /library/metadata/KEY`, JSON only when asked with `Accept`), a
  series' episodes (`ParentId` + `Recursive`, Plex `allLeaves`);
- refreshes (`POST /Items/ID/Refresh`, Plex `PUT .../refresh`), recorded.

Query parameter names are matched without regard to case, like the real servers.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from aiohttp import web

Kind = Literal["jellyfin", "emby", "plex"]
TOKEN = "media-server-token"


@dataclass(frozen=True)
class FakeItem:
    id: str
    type: str  # as the server names it: Movie, Episode, Series, Season (Plex: movie, episode, show, season)
    name: str
    path: str | None = None  # the file, as the server sees it
    parents: tuple[str, ...] = ()  # an episode's series and season ids
    series: str | None = None
    number: tuple[int, int] | None = None  # an episode's season and episode number


def _key(item_id: str) -> str:
    """Jellyfin takes ids with or without dashes, in any case."""
    return item_id.replace("-", "").lower()


class FakeMediaServer:
    def __init__(self, kind: Kind, token: str = TOKEN) -> None:
        self.kind = kind
        self.token = token
        self.port = 0
        self.items: dict[str, FakeItem] = {}
        self.calls: list[tuple[str, str, dict[str, str], dict[str, str]]] = []  # method, path, query, headers
        self.refreshed: list[str] = []  # item ids, lower case without dashes
        self.rejected = 0  # requests without the right credentials
        self.answer_with: int | None = None  # force this status on every call (e.g. 500, 401)
        self._changed = threading.Condition()
        self._ready = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._thread = threading.Thread(target=lambda: asyncio.run(self._main()), name=f"fake-{kind}", daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def add(self, *items: FakeItem) -> None:
        for item in items:
            self.items[_key(item.id)] = item

    def wait_for_refresh(self, item_id: str, timeout: float = 30.0) -> bool:
        with self._changed:
            return self._changed.wait_for(lambda: _key(item_id) in self.refreshed, timeout)

    def __enter__(self) -> FakeMediaServer:
        self._thread.start()
        if not self._ready.wait(30):
            raise RuntimeError(f"the fake {self.kind} did not start")
        return self

    def __exit__(self, *exc: object) -> None:
        if self._loop is not None and self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(30)

    async def _main(self) -> None:
        self._loop, self._stop = asyncio.get_running_loop(), asyncio.Event()
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._handle)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        self.port = int(runner.addresses[0][1])
        self._ready.set()
        await self._stop.wait()
        await runner.cleanup()

    # --- requests ------------------------------------------------------------------------

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        query = {name.lower(): value for name, value in request.query.items()}
        self.calls.append((request.method, request.path, query, dict(request.headers)))
        if self.answer_with is not None:
            return web.Response(status=self.answer_with, text="forced by the test")
        if not self._authorised(request, query):
            self.rejected += 1
            return web.Response(status=401, text="Unauthorized")
        route = self._plex if self.kind == "plex" else self._mediabrowser
        return route(request, query)

    def _authorised(self, request: web.Request, query: dict[str, str]) -> bool:
        if self.kind == "jellyfin":
            return request.headers.get("Authorization", "") == f'MediaBrowser Token="{self.token}"'
        if self.kind == "emby":
            return self.token in (request.headers.get("X-Emby-Token"), query.get("api_key"))
        return self.token in (request.headers.get("X-Plex-Token"), query.get("x-plex-token"))

    def _mediabrowser(self, request: web.Request, query: dict[str, str]) -> web.StreamResponse:
        path = request.path
        if self.kind == "emby":
            if not path.lower().startswith("/emby/"):
                return web.Response(status=404)
            path = path[len("/emby") :]
        parts = path.strip("/").split("/")
        if request.method == "GET" and parts == ["Items"]:
            if "ids" in query:
                found = [self.items[_key(i)] for i in query["ids"].split(",") if _key(i) in self.items]
            elif "parentid" in query and query.get("recursive") == "true":
                wanted = query.get("includeitemtypes", "").split(",")
                found = [
                    item
                    for item in self.items.values()
                    if _key(query["parentid"]) in map(_key, item.parents) and (not wanted[0] or item.type in wanted)
                ]
            else:
                found = list(self.items.values())
            listed = [self._mediabrowser_item(item) for item in found]
            return web.json_response({"Items": listed, "TotalRecordCount": len(listed), "StartIndex": 0})
        if request.method == "POST" and len(parts) == 3 and parts[0] == "Items" and parts[2] == "Refresh":
            return self._refresh(parts[1], web.Response(status=204))
        return web.Response(status=404)

    def _mediabrowser_item(self, item: FakeItem) -> dict[str, Any]:
        found: dict[str, Any] = {"Name": item.name, "ServerId": "f00d", "Id": _key(item.id), "Type": item.type}
        if item.path is not None:
            found.update(Path=item.path, LocationType="FileSystem", MediaType="Video")
        else:
            found["LocationType"] = "Virtual" if item.type == "Episode" else "FileSystem"
        if item.series is not None:
            found["SeriesName"] = item.series
        return found

    def _plex(self, request: web.Request, query: dict[str, str]) -> web.StreamResponse:
        parts = request.path.strip("/").split("/")
        if parts[:2] != ["library", "metadata"] or len(parts) < 3 or _key(parts[2]) not in self.items:
            return web.Response(status=404, text="<html><body>Not Found</body></html>", content_type="text/html")
        item = self.items[_key(parts[2])]
        if request.method == "PUT" and parts[3:] == ["refresh"]:
            return self._refresh(parts[2], web.Response(status=200))
        if request.method != "GET" or parts[3:] not in ([], ["allLeaves"]):
            return web.Response(status=404)
        if parts[3:] == ["allLeaves"]:
            listed = [i for i in self.items.values() if item.id in i.parents and i.type == "episode"]
        else:
            listed = [item]
        if "application/json" not in request.headers.get("Accept", ""):
            return web.Response(text='<?xml version="1.0"?><MediaContainer size="1"/>', content_type="text/xml")
        metadata = [self._plex_metadata(i) for i in listed]
        return web.json_response({"MediaContainer": {"size": len(metadata), "Metadata": metadata}})

    def _plex_metadata(self, item: FakeItem) -> dict[str, Any]:
        found: dict[str, Any] = {
            "ratingKey": item.id,
            "key": f"/library/metadata/{item.id}",
            "type": item.type,
            "title": item.name,
            "librarySectionID": 2,
        }
        if item.series is not None:
            found["grandparentTitle"] = item.series
        if item.type == "episode" and item.parents:
            found["grandparentRatingKey"] = item.parents[0]  # the show
        if item.number is not None:
            found["parentIndex"], found["index"] = item.number
        if item.path is not None:
            found["Media"] = [{"id": 1, "Part": [{"id": 1, "key": "/library/parts/1/file.mkv", "file": item.path}]}]
        return found

    def _refresh(self, item_id: str, answer: web.Response) -> web.Response:
        if _key(item_id) not in self.items:
            return web.Response(status=404)
        with self._changed:
            self.refreshed.append(_key(item_id))
            self._changed.notify_all()
        return answer

    def calls_to(self, predicate: Callable[[str, str], bool]) -> list[tuple[str, str, dict[str, str], dict[str, str]]]:
        return [call for call in self.calls if predicate(call[0], call[1])]
