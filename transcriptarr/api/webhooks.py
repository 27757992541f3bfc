"""POST /webhooks/{jellyfin,emby,plex,tautulli}: a media server says an item was added or played.

The item's file (from the payload, or asked of the server's API when the payload
names none) goes through PATH_MAPPINGS, must lie inside LIBRARY_PATHS, and is
queued at webhook priority if the library's rules say it needs subtitles (see
integrations/mediaservers/). A show or season is expanded to its episodes, which
are checked in the background. Answers, always JSON:

- 202 `{queued, reason, job_id, ...}`: handled (`queued` false: nothing new was needed);
- 200 `{ignored: reason}`: an event we do not act on, so that the server does not retry;
- 400 a body that is not the server's webhook, 401 a missing or wrong API key,
  403 a file outside LIBRARY_PATHS, 404 a file or item that does not exist;
- 502 the media server's API failed, 503 its address or key is not configured.

With API_KEY set the key goes in the `X-Api-Key` header or the `apikey` parameter
(Plex and Emby cannot send headers).

The same handling serves SubGen's URLs (api/subgen_routes.py) and Sonarr's and
Radarr's webhooks (api/arr_webhooks.py): `dispatch`, `local_path` and `queue_file`.
"""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import Awaitable, Mapping
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Final

import structlog
from aiohttp import BodyPartReader, web

from transcriptarr.api.errors import ApiError, json_error
from transcriptarr.api.keys import DEPS
from transcriptarr.api.security import OutsideLibrary, inside_library
from transcriptarr.db.models import Source
from transcriptarr.integrations.mediaservers.events import Ignored, MediaEvent, MediaFile, PayloadError, ServerName
from transcriptarr.integrations.mediaservers.http import ItemNotFound, MediaServerError
from transcriptarr.integrations.mediaservers.plex import PlexServer
from transcriptarr.integrations.mediaservers.queueing import FileOutcome, queue_media_file
from transcriptarr.integrations.mediaservers.servers import (
    JSON_PARTS,
    SERVERS,
    MediaServer,
    Parser,
    connection,
    server_from_settings,
)
from transcriptarr.library import Library

if TYPE_CHECKING:
    from transcriptarr.api.dependencies import ApiDeps

log = structlog.get_logger(__name__)

# POST /webhooks/{route}: one per server of the media server table (integrations/mediaservers/servers.py).
ROUTES: Final = MappingProxyType({entry.route: entry.parse for entry in SERVERS})
MAX_PART_BYTES = 1024 * 1024  # events are a few kB; Plex's thumbnail part is skipped, not kept
_READ_SECONDS = 30.0


class Webhooks:
    """The webhook routes' state: media-server clients, the library's rules, background checks."""

    def __init__(self, deps: ApiDeps) -> None:
        self.deps = deps
        # The library's rules (in provider-only mode too: the composition root builds them from LIBRARY_PATHS).
        self.library = deps.library
        self._servers: dict[ServerName, MediaServer] = {}
        self._background: set[asyncio.Task[None]] = set()

    def server(self, name: ServerName) -> MediaServer | None:
        if name not in self._servers:
            found = server_from_settings(self.deps.settings, name)
            if found is None:
                return None
            self._servers[name] = found
        return self._servers[name]

    async def close(self) -> None:
        for task in self._background:
            task.cancel()
        await asyncio.gather(*self._background, return_exceptions=True)
        for server in self._servers.values():
            await server.close()
        self._servers.clear()

    # --- one request -------------------------------------------------------------------

    async def receive(self, request: web.Request, route: str) -> web.Response:
        try:
            return await self.dispatch(request, route, await read_payload(request), ROUTES[route])
        except ApiError as exc:
            return json_error(exc.status, exc.message)

    async def dispatch(self, request: web.Request, route: str, data: Mapping[str, Any], parse: Parser) -> web.Response:
        """Read a media server's event from `data` with `parse` and act on it; ApiError for a bad one."""
        try:
            event = parse(data)
        except PayloadError as exc:
            log.info("webhook_rejected", route=route, reason=str(exc), client=request.remote)
            raise ApiError(400, f"{route} webhook: {exc}") from None
        if isinstance(event, Ignored):
            return ignored(route, event.reason)
        wanted = self.deps.settings.webhook_events
        if event.kind not in wanted:
            return ignored(route, f"{event.kind} events are off (WEBHOOK_EVENTS={','.join(wanted) or 'empty'})")
        log.info(
            "webhook_received",
            route=route,
            server=event.server,
            kind=event.kind,
            item_id=event.item_id,
            title=event.title,
            path=event.path,
        )
        files = await self._files(event)
        if isinstance(files, Ignored):
            return ignored(route, files.reason)
        if len(files) == 1 and not event.container:
            outcome = await self._queue(event, files[0])
            self._queue_ahead(event)
            return web.json_response(
                {
                    "queued": outcome.queued,
                    "reason": outcome.reason,
                    "job_id": outcome.job_ids[0] if outcome.job_ids else None,
                    "job_ids": outcome.job_ids,
                    "path": outcome.path,
                    "reasons": outcome.reasons,
                },
                status=202,
            )
        self.in_background(self._queue_all(event, files), f"webhook-{event.server}-{event.item_id}")
        reason = f"checking {len(files)} files of {event.title} in the background; those that need subtitles are queued"
        return web.json_response({"queued": False, "reason": reason, "job_id": None, "files": len(files)}, status=202)

    async def _files(self, event: MediaEvent) -> list[MediaFile] | Ignored:
        """The event's files as the media server names them: from the payload, or from its API."""
        if event.path is not None and not event.container:
            return [MediaFile(event.item_id, event.path, event.title)]
        server = self.server(event.server)
        if server is None or event.item_id is None:
            needs = connection(event.server).needs
            if event.container:
                return Ignored(f"{event.title} is a series or season: set {needs} to expand it")
            raise ApiError(503, f"the {event.server} event names no file: set {needs} to look up its items")
        try:
            files = await server.files(event.item_id)
        except ItemNotFound as exc:
            raise ApiError(404, str(exc)) from None
        except MediaServerError as exc:
            log.warning("media_server_unavailable", server=event.server, item_id=event.item_id, error=str(exc))
            raise ApiError(502, str(exc)) from None
        if not files:
            return Ignored(f"{event.server} item {event.item_id} ({event.title}) has no media file")
        return files

    async def _queue(self, event: MediaEvent, media: MediaFile) -> FileOutcome:
        origin = {"server": event.server, "item_id": media.item_id, "kind": event.kind, "title": media.title}
        return await self.queue_file(origin, media.path)

    async def local_path(self, sent: str, who: str) -> str:
        """`sent` (a path as another program sees it) through PATH_MAPPINGS; ApiError 403 outside LIBRARY_PATHS."""
        local = self.deps.paths.map(sent)
        named = local if local == sent else f"{local} (mapped from {sent})"
        hint = "" if local == sent else f" (the server sent {sent})"
        try:
            settings = self.deps.settings
            await asyncio.to_thread(
                inside_library, local, settings.library_paths, follow_symlinks=settings.library_follow_symlinks
            )
        except OutsideLibrary as exc:
            log.warning("webhook_path_refused", server=who, path=local, sent=sent, reason=str(exc))
            raise ApiError(403, f"{exc}{hint}; check PATH_MAPPINGS") from None
        except (OSError, RuntimeError, ValueError) as exc:  # e.g. a symlink loop
            raise ApiError(400, f"cannot resolve {named}: {exc}") from None
        return local

    async def queue_file(
        self,
        origin: Mapping[str, Any],
        sent: str,
        *,
        library: Library | None = None,
        source: Source = Source.WEBHOOK,
        priority: int | None = None,
    ) -> FileOutcome:
        """Map, check and queue one file by the library's rules; ApiError (403, 404) when it cannot be queued.

        `origin` (server, item_id, kind, title) goes into the jobs' details; `library`
        replaces the service's rules (SubGen's /batch with a forced language).
        """
        local = await self.local_path(sent, str(origin.get("server")))
        if not await asyncio.to_thread(os.path.isfile, local):
            log.warning("webhook_file_missing", server=origin.get("server"), path=local, sent=sent)
            named = local if local == sent else f"{local} (mapped from {sent})"
            raise ApiError(404, f"{named} is not a file on this machine; check PATH_MAPPINGS")
        rules = library or self.library
        assert rules is not None  # inside_library refuses everything without LIBRARY_PATHS
        return await queue_media_file(
            rules, self.deps.queue, local, origin, wake=self.deps.pool.wake, source=source, priority=priority
        )

    async def _queue_all(self, event: MediaEvent, files: list[MediaFile]) -> None:
        queued = await self._queue_each(event, files)
        log.info("webhook_expanded", server=event.server, item_id=event.item_id, files=len(files), queued=queued)

    async def _queue_each(self, event: MediaEvent, files: list[MediaFile]) -> int:
        """Queue the files in order (jobs of one priority are claimed in the order queued); how many were new."""
        queued = 0
        for media in files:
            try:
                queued += (await self._queue(event, media)).queued
            except ApiError as exc:
                log.info("webhook_file_skipped", server=event.server, path=media.path, reason=exc.message)
        return queued

    def _queue_ahead(self, event: MediaEvent) -> None:
        """PLEX_QUEUE_AHEAD: after a Plex episode, the episodes that follow it, checked in the background."""
        scope = self.deps.settings.plex_queue_ahead
        server = self.server(event.server)
        if scope == "off" or not isinstance(server, PlexServer) or event.item_id is None:
            return
        item_id = event.item_id

        async def queue_ahead() -> None:
            try:
                files = await server.episodes_after(item_id, scope)
            except MediaServerError as exc:
                log.warning("webhook_queue_ahead_failed", server=event.server, item_id=item_id, error=str(exc))
                return
            queued = await self._queue_each(event, files)
            where = {"server": event.server, "item_id": item_id, "scope": scope}
            log.info("webhook_queued_ahead", **where, files=len(files), queued=queued)

        self.in_background(queue_ahead(), f"webhook-ahead-{event.server}-{item_id}")

    def in_background(self, work: Awaitable[None], name: str) -> None:
        async def guarded() -> None:
            try:
                await work
            except Exception:  # a database hiccup: the next scan finds the files anyway
                log.exception("webhook_background_failed", task=name)

        task = asyncio.create_task(guarded(), name=name)
        self._background.add(task)
        task.add_done_callback(self._background.discard)


def ignored(route: str, reason: str) -> web.Response:
    log.info("webhook_ignored", route=route, reason=reason)
    return web.json_response({"ignored": reason})


async def read_payload(request: web.Request) -> dict[str, Any]:
    """The event as a JSON object: the whole body, or the `payload`/`data` part of a multipart body."""
    try:
        async with asyncio.timeout(_READ_SECONDS):
            raw = await _json_part(request) if request.content_type.startswith("multipart/") else await _body(request)
    except TimeoutError:
        raise ApiError(408, f"the body did not arrive within {_READ_SECONDS:g} s") from None
    try:
        data = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        raise ApiError(400, "the body is not JSON: send the media server's webhook event as it is") from None
    if not isinstance(data, dict):
        raise ApiError(400, "the body must be a JSON object")
    return data


async def _body(request: web.Request) -> bytes:
    try:
        return await request.read()  # at most the app's client_max_size (1 MiB)
    except web.HTTPRequestEntityTooLarge:
        raise ApiError(413, "the body is larger than 1 MiB; a webhook event is a few kB") from None
    except Exception as exc:  # a cut-off or malformed chunked body
        raise ApiError(400, f"cannot read the body: {exc or type(exc).__name__}") from None


async def _json_part(request: web.Request) -> bytes:
    try:
        reader = await request.multipart()
        while (part := await reader.next()) is not None:
            if isinstance(part, BodyPartReader) and part.name in JSON_PARTS:
                data = bytearray()
                while chunk := await part.read_chunk():
                    data += chunk
                    if len(data) > MAX_PART_BYTES:
                        raise ApiError(413, f"the {part.name!r} part is larger than 1 MiB; an event is a few kB")
                return bytes(data)
            await part.release()  # Plex's thumbnail, or a field that is not ours
    except ApiError:
        raise
    except Exception as exc:  # aiohttp raises ValueError, AssertionError, ... on broken framing
        raise ApiError(400, f"malformed multipart body: {exc or type(exc).__name__}") from None
    wanted = " or ".join(f"'{entry.json_part}' ({entry.title})" for entry in SERVERS if entry.json_part)
    raise ApiError(400, f"no {wanted} part in the multipart body")


WEBHOOKS = web.AppKey("webhooks", Webhooks)


def add_routes(app: web.Application) -> None:
    """`app[DEPS]` must be set already."""
    app[WEBHOOKS] = Webhooks(app[DEPS])

    for route in ROUTES:

        async def handler(request: web.Request, route: str = route) -> web.Response:
            return await request.app[WEBHOOKS].receive(request, route)

        app.router.add_post(f"/webhooks/{route}", handler)

    async def close(app: web.Application) -> None:
        await app[WEBHOOKS].close()

    app.on_cleanup.append(close)
