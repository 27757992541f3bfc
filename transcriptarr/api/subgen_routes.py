"""SubGen's URLs, so that media servers and scripts pointed at SubGen need no change.

`POST /plex`, `/jellyfin`, `/emby`, `/tautulli` and `/webhook` take the bodies
SubGen takes (integrations/mediaservers/subgen.py) and go the way of
`/webhooks/{name}` (api/webhooks.py): PATH_MAPPINGS, LIBRARY_PATHS, the library's
rules, webhook priority, the same answers (202 handled, 200 ignored, 4xx bad input).

`POST /batch?directory=PATH[|PATH...]&forceLanguage=xx` queues a folder (every media
file under it) or a file, as SubGen's /batch does: each file is decided by the
library's rules, with the audio language forced when asked, and queued at manual
priority (a person asked). A single file is answered like a webhook; folders are
walked in the background (202 at once, `batch_finished` in the log when done).

With API_KEY set these URLs need it like /webhooks/*: the `X-Api-Key` header
(Jellyfin's "Add Request Header", Tautulli's JSON headers) or `?apikey=KEY` (Plex,
Emby, a browser). SubGen had no key, so a SubGen set-up works as it is without one.
"""

# Paths stay plain str, as in the library package whose walker this uses: os.path.
# ruff: noqa: PTH113, PTH119, PTH122

from __future__ import annotations

import asyncio
import dataclasses
import os
from typing import Any

import structlog
from aiohttp import web

from transcriptarr.api.errors import ApiError, json_error
from transcriptarr.api.webhooks import WEBHOOKS, Webhooks, read_payload
from transcriptarr.db.models import Source
from transcriptarr.integrations.mediaservers.events import PayloadError
from transcriptarr.integrations.mediaservers.servers import BY_ROUTE, SERVERS
from transcriptarr.integrations.mediaservers.subgen import detect
from transcriptarr.library import Library
from transcriptarr.library.walker import WalkReport, walk
from transcriptarr.policy.languages import whisper_code

log = structlog.get_logger(__name__)

# SubGen's URL of each server of the media server table that SubGen had, and its first one for any of them.
MEDIA_SERVER_PATHS = (*(f"/{entry.route}" for entry in SERVERS if entry.subgen is not None), "/webhook")
PATHS = (*MEDIA_SERVER_PATHS, "/batch")


async def media_server_event(request: web.Request) -> web.Response:
    hooks = request.app[WEBHOOKS]
    route = request.path
    try:
        data = await read_payload(request)
        if route == "/webhook":
            try:
                name = detect(data)
            except PayloadError as exc:
                log.info("webhook_rejected", route=route, reason=str(exc), client=request.remote)
                raise ApiError(400, f"{route}: {exc}") from None
        else:
            name = route.lstrip("/")
        parse = BY_ROUTE[name].subgen
        assert parse is not None  # MEDIA_SERVER_PATHS and detect() name SubGen's servers only
        return await hooks.dispatch(request, route, data, parse)
    except ApiError as exc:
        return json_error(exc.status, exc.message)


async def batch(request: web.Request) -> web.Response:
    hooks = request.app[WEBHOOKS]
    try:
        return await _batch(hooks, request)
    except ApiError as exc:
        return json_error(exc.status, exc.message)


async def _batch(hooks: Webhooks, request: web.Request) -> web.Response:
    raw = request.query.get("directory", "")
    wanted = [part.strip() for part in raw.split("|") if part.strip()]
    if not wanted:
        raise ApiError(400, "give ?directory=PATH: the folder or file to queue (several separated by |), as for SubGen")
    library = _library(hooks, request.query.get("forceLanguage") or request.query.get("forcelanguage"))
    local = [await hooks.local_path(path, "batch") for path in wanted]  # 403 before anything is queued
    for sent, path in zip(wanted, local, strict=True):
        if not await asyncio.to_thread(os.path.exists, path):
            named = path if path == sent else f"{path} (mapped from {sent})"
            raise ApiError(404, f"{named} does not exist on this machine; check the directory and PATH_MAPPINGS")
    forced = library.config.rules.force_language if library is not hooks.library else None
    log.info("batch_requested", paths=local, force_language=forced)
    if len(local) == 1 and await asyncio.to_thread(os.path.isfile, local[0]):
        outcome = await hooks.queue_file(_origin(local[0]), local[0], library=library, source=Source.MANUAL)
        answer = {
            "queued": outcome.queued,
            "reason": outcome.reason,
            "job_id": outcome.job_ids[0] if outcome.job_ids else None,
            "job_ids": outcome.job_ids,
            "path": outcome.path,
            "reasons": outcome.reasons,
        }
        return web.json_response(answer, status=202)
    hooks.in_background(_queue_tree(hooks, library, local), f"batch-{len(local)}")
    reason = f"checking the media files under {', '.join(local)} in the background; those needing subtitles are queued"
    return web.json_response({"queued": False, "reason": reason, "job_id": None, "paths": local}, status=202)


def _library(hooks: Webhooks, force: str | None) -> Library:
    """The service's rules, or the same with the audio language forced (SubGen's forceLanguage)."""
    if hooks.library is None:
        raise ApiError(403, "no library is configured (LIBRARY_PATHS is empty): /batch queues library files only")
    if not force:
        return hooks.library
    code = whisper_code(force)
    if code is None:
        raise ApiError(400, f"forceLanguage={force!r} is not a language Whisper knows; use a code such as en or de")
    config = hooks.library.config
    forced = dataclasses.replace(config, rules=dataclasses.replace(config.rules, force_language=code))
    return hooks.library.with_config(forced)


async def _queue_tree(hooks: Webhooks, library: Library, paths: list[str]) -> None:
    files = queued = skipped = 0
    for path in paths:
        for media in await asyncio.to_thread(_media_files, library, path):
            files += 1
            try:
                outcome = await hooks.queue_file(_origin(media), media, library=library, source=Source.MANUAL)
            except ApiError as exc:  # a symlink out of the library, a file gone meanwhile
                log.info("webhook_file_skipped", server="batch", path=media, reason=exc.message)
                skipped += 1
                continue
            queued += outcome.queued
    log.info("batch_finished", paths=paths, files=files, queued=queued, skipped=skipped)


def _media_files(library: Library, path: str) -> list[str]:
    """The media files at or under `path` (the walker skips ignored folders and what cannot be read)."""
    rules = library.config.rules
    extensions = rules.video_extensions | rules.audio_extensions
    if os.path.isfile(path):
        return [path]
    found = []
    for folder in walk(path, WalkReport(), follow_symlinks=library.config.follow_symlinks):
        found += [entry.path for entry in folder.files if os.path.splitext(entry.name)[1].lower() in extensions]
    return sorted(found)


def _origin(path: str) -> dict[str, Any]:
    return {"server": "batch", "item_id": None, "kind": "batch", "title": os.path.basename(path)}


async def post_only(request: web.Request) -> web.Response:
    """SubGen answered GET with a hint too; here a 405 that says what to send."""
    answer = json_error(405, f"{request.path} takes POST: the media server's webhook (see docs/integrations.md)")
    answer.headers["Allow"] = "POST"
    return answer


def add_routes(app: web.Application) -> None:
    """`app[WEBHOOKS]` must be set already."""
    for path in MEDIA_SERVER_PATHS:
        app.router.add_post(path, media_server_event)
    app.router.add_post("/batch", batch)
    for path in PATHS:
        app.router.add_get(path, post_only)
