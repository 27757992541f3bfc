"""POST (or PUT) /webhooks/sonarr and /webhooks/radarr: Sonarr's and Radarr's Webhook connection.

Set up in Sonarr or Radarr (Settings > Connect > + > Webhook): URL
`http://transcriptarr:9000/webhooks/sonarr?apikey=KEY` (or the `X-Api-Key` header
under the advanced Headers; the key only with API_KEY set), triggers On Import, On
Upgrade, On Rename and On File Delete (For Upgrade too). What each event does:

- On Import / On Upgrade (`Download`): the file is decided by the library's rules
  and queued at webhook priority; an upgrade's replaced files are gone, so their
  jobs are dropped;
- On Rename: the jobs of each old path are dropped and the new path is decided,
  keeping the old jobs' priority;
- On File Delete, or a series/movie deleted with its files: their jobs are dropped
  (a running one stops); a path that holds a file again (an upgrade under the same
  name) keeps its jobs;
- Test: answered 200, so the Test button says the URL and key are right.

The answer is the webhook routes' (api/webhooks.py): 202 with what was queued and
dropped, 200 `{ignored}` for other events, 400/401/403/404 for bad input. Sonarr's
own triggers pick the events, so WEBHOOK_EVENTS (media servers' added/played) does
not apply here.
"""

from __future__ import annotations

import asyncio
import os
from typing import Any

import structlog
from aiohttp import web

from transcriptarr.api.errors import ApiError, json_error
from transcriptarr.api.webhooks import WEBHOOKS, Webhooks, ignored, read_payload
from transcriptarr.integrations.arr import SHAPES, ArrApp, ArrEvent, ArrFile, ArrTest, parse_webhook
from transcriptarr.integrations.gone_files import drop_jobs
from transcriptarr.integrations.mediaservers.events import Ignored, PayloadError
from transcriptarr.integrations.mediaservers.queueing import FileOutcome

log = structlog.get_logger(__name__)

APPS: tuple[ArrApp, ...] = ("sonarr", "radarr")


async def receive(request: web.Request, app: ArrApp) -> web.Response:
    hooks = request.app[WEBHOOKS]
    route = app
    try:
        data = await read_payload(request)
        try:
            event = parse_webhook(app, data)
        except PayloadError as exc:
            log.info("webhook_rejected", route=route, reason=str(exc), client=request.remote)
            raise ApiError(400, f"{route} webhook: {exc}") from None
        if isinstance(event, Ignored):
            return ignored(route, event.reason)
        if isinstance(event, ArrTest):
            log.info("arr_test_received", app=app, instance=event.instance)
            name = SHAPES[app].name
            return web.json_response({"test": f"{name} ({event.instance}) reached Transcriptarr; the key is right"})
        log.info(
            "arr_webhook_received",
            app=app,
            kind=event.kind,
            title=event.title,
            files=[f.path for f in event.files],
            gone=[*event.gone, *event.gone_folders],
        )
        return await _act(hooks, event)
    except ApiError as exc:
        return json_error(exc.status, exc.message)


async def _act(hooks: Webhooks, event: ArrEvent) -> web.Response:
    """Drop the jobs of what is gone first, then decide the new files: an upgrade may reuse the old name."""
    name = SHAPES[event.app].name
    dropped: list[dict[str, Any]] = []
    kept: dict[str, int] = {}  # a renamed file's new path -> the top priority of the jobs it had
    for sent in event.gone:
        found = await _drop(hooks, event, sent, folder=False)
        if found is not None:
            dropped.append(found)
    for sent in event.gone_folders:
        found = await _drop(hooks, event, sent, folder=True)
        if found is not None:
            dropped.append(found)
    for moved in event.files:
        if moved.previous is None:
            continue
        info = next((d for d in dropped if d["sent"] == moved.previous), None)
        if info and info["priority"] is not None:
            kept[moved.path] = info["priority"]
    answer: dict[str, Any] = {
        "queued": False,
        "reason": "",
        "job_id": None,
        "job_ids": [],
        "dropped": [{k: v for k, v in d.items() if k != "sent"} for d in dropped],
    }
    if not event.files:
        count = sum(len(d["job_ids"]) for d in dropped)
        answer["reason"] = f"{name} {event.kind}: {count} job(s) dropped" if count else f"{name} {event.kind}: no jobs"
        return web.json_response(answer, status=202)
    if len(event.files) == 1:
        file = event.files[0]
        outcome = await _queue(hooks, event, file, kept)
        answer.update(
            queued=outcome.queued,
            reason=outcome.reason,
            job_id=outcome.job_ids[0] if outcome.job_ids else None,
            job_ids=outcome.job_ids,
            path=outcome.path,
            reasons=outcome.reasons,
        )
        return web.json_response(answer, status=202)
    hooks.in_background(_queue_all(hooks, event, kept), f"{event.app}-{event.kind}")
    answer.update(
        reason=f"checking {len(event.files)} files of {event.title} in the background; "
        "those that need subtitles are queued",
        files=len(event.files),
    )
    return web.json_response(answer, status=202)


async def _drop(hooks: Webhooks, event: ArrEvent, sent: str, *, folder: bool) -> dict[str, Any] | None:
    """Cancel the live jobs of a gone file (or of every file under a gone folder)."""
    try:
        local = await hooks.local_path(sent, event.app)
    except ApiError as exc:
        if not event.files:
            raise  # a delete outside the libraries: say so, as for an import
        log.info("webhook_file_skipped", server=event.app, path=sent, reason=exc.message)
        return None
    local = await asyncio.to_thread(os.path.abspath, local)  # the form the jobs hold
    if not folder and await asyncio.to_thread(os.path.isfile, local):
        # Replaced under the same name (an upgrade): the jobs are for the file there now.
        return {"sent": sent, "path": local, "job_ids": [], "priority": None, "reason": "the path holds a file again"}
    jobs = await hooks.deps.queue.live_for_media(local, folder=folder)
    why = f"{SHAPES[event.app].name} {event.kind}: {local} is gone"
    ids = await drop_jobs(hooks.deps.queue, jobs, why)
    if ids:
        log.info("arr_jobs_dropped", app=event.app, kind=event.kind, path=local, job_ids=ids)
    priority = max((job.priority for job in jobs), default=None)
    return {"sent": sent, "path": local, "job_ids": ids, "priority": priority, "reason": why}


async def _queue_all(hooks: Webhooks, event: ArrEvent, kept: dict[str, int]) -> None:
    queued = 0
    for file in event.files:
        try:
            outcome = await _queue(hooks, event, file, kept)
        except ApiError as exc:
            log.info("webhook_file_skipped", server=event.app, path=file.path, reason=exc.message)
            continue
        queued += outcome.queued
    log.info("webhook_expanded", server=event.app, item_id=None, files=len(event.files), queued=queued)


async def _queue(hooks: Webhooks, event: ArrEvent, file: ArrFile, kept: dict[str, int]) -> FileOutcome:
    """Decide and queue one file; a renamed file's jobs keep their priority."""
    if file.previous is not None and file.path not in kept:
        # No jobs at the old path: the watcher may have followed the rename already. Its jobs
        # stay as they are; a rename is no reason to move them up to webhook priority.
        local = await asyncio.to_thread(os.path.abspath, await hooks.local_path(file.path, event.app))
        found = await hooks.deps.queue.live_for_media(local)
        if found:
            ids = [job.id for job in found]
            return FileOutcome(local, False, "already queued (the library followed the rename)", ids)
    return await hooks.queue_file(_origin(event, file), file.path, priority=kept.get(file.path))


def _origin(event: ArrEvent, file: ArrFile) -> dict[str, Any]:
    return {"server": event.app, "item_id": file.file_id, "kind": event.kind, "title": event.title}


def add_routes(app: web.Application) -> None:
    """`app[WEBHOOKS]` must be set already. Sonarr and Radarr may be set to PUT instead of POST."""
    for name in APPS:

        async def handler(request: web.Request, name: ArrApp = name) -> web.Response:
            return await receive(request, name)

        app.router.add_post(f"/webhooks/{name}", handler)
        app.router.add_put(f"/webhooks/{name}", handler)
