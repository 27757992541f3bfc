"""Status and control for people and scripts: health, status, jobs, scan, live events, metrics."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Sequence
from typing import Any

import structlog
from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST

from transcriptarr.api.dependencies import ApiDeps
from transcriptarr.api.errors import ApiError
from transcriptarr.api.keys import DEPS, METRICS, SHUTTING_DOWN, SNAPSHOTS
from transcriptarr.api.views import job_dict
from transcriptarr.api.waiting import next_event
from transcriptarr.db.models import Job, JobState, Source, Task
from transcriptarr.policy.confinement import OutsideLibrary, Refused, library_file, target_languages
from transcriptarr.queue.jobqueue import InvalidTransition, JobNotFound, NewJob

log = structlog.get_logger(__name__)

MAX_PAGE = 500
_MAX_ID = 2**63 - 1
_PRIORITY_RANGE = (-1_000_000, 1_000_000)
_SSE_PING_SECONDS = 15.0


def _one_job(job: Job, deps: ApiDeps) -> dict[str, Any]:
    return job_dict(job, deps.pool.running().get(job.id))


def _job_id(request: web.Request) -> int:
    raw = request.match_info["id"]
    if not raw.isascii() or not raw.isdigit() or len(raw) > 19 or not 0 < int(raw) <= _MAX_ID:
        raise ApiError(400, f"job id {raw!r} is not a positive integer")
    return int(raw)


def _choices(request: web.Request, name: str, allowed: Sequence[str]) -> list[str]:
    """`?state=queued&state=failed` or `?state=queued,failed`."""
    values = [part.strip() for raw in request.query.getall(name, []) for part in raw.split(",") if part.strip()]
    for value in values:
        if value not in allowed:
            raise ApiError(400, f"unknown {name} {value!r}; use one of {', '.join(allowed)}")
    return values


def _int_param(request: web.Request, name: str, default: int, low: int, high: int) -> int:
    raw = request.query.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ApiError(400, f"{name}={raw!r} is not an integer") from None
    if not low <= value <= high:
        raise ApiError(400, f"{name} must be between {low} and {high}")
    return value


async def _json_object(request: web.Request) -> dict[str, Any]:
    try:
        body = await request.json()
    except (ValueError, UnicodeDecodeError):
        raise ApiError(400, "the body must be a JSON object") from None
    if not isinstance(body, dict):
        raise ApiError(400, "the body must be a JSON object")
    return body


# --------------------------------------------------------------------------- health and status


async def health(request: web.Request) -> web.Response:
    """200 while the database answers; 503 (with the details) when it does not."""
    report = await request.app[SNAPSHOTS].health.get()
    status = 200 if report.data["database"]["ok"] else 503
    return web.Response(body=report.body, status=status, content_type="application/json")


async def api_status(request: web.Request) -> web.Response:
    snapshot = await request.app[SNAPSHOTS].status.get()
    return web.Response(body=snapshot.body, content_type="application/json")


# --------------------------------------------------------------------------- jobs


async def list_jobs(request: web.Request) -> web.Response:
    deps = request.app[DEPS]
    states = _choices(request, "state", [s.value for s in JobState])
    sources = _choices(request, "source", [s.value for s in Source])
    limit = _int_param(request, "limit", 50, 1, MAX_PAGE)
    offset = _int_param(request, "offset", 0, 0, 10**9)
    jobs = await deps.queue.list_jobs(states=states, sources=sources, limit=limit, offset=offset)
    live = deps.pool.running()
    return web.json_response(
        {"jobs": [job_dict(job, live.get(job.id)) for job in jobs], "limit": limit, "offset": offset}
    )


async def get_job(request: web.Request) -> web.Response:
    deps = request.app[DEPS]
    try:
        job = await deps.queue.get(_job_id(request))
    except JobNotFound as exc:
        raise ApiError(404, str(exc)) from None
    # What it still has to tell others (media server, Bazarr, NOTIFY_URL), and what was given up, why.
    followups = [followup.summary() for followup in await deps.followups.for_job(job.id)]
    return web.json_response({"job": {**_one_job(job, deps), "followups": followups}})


async def create_job(request: web.Request) -> web.Response:
    """Queue a library file: `{"path": ..., "language": ..., "task": ..., "priority": ...}`."""
    deps = request.app[DEPS]
    settings = deps.settings
    body = await _json_object(request)
    raw_path = body.get("path")
    if not isinstance(raw_path, str) or not raw_path:
        raise ApiError(400, "'path' (the absolute path of a media file inside LIBRARY_PATHS) is required")
    try:
        media = await asyncio.to_thread(
            library_file, raw_path, settings.library_paths, follow_symlinks=settings.library_follow_symlinks
        )
        languages = target_languages(body.get("language"), settings.target_languages)
    except Refused as exc:
        if isinstance(exc, OutsideLibrary):
            log.warning("job_path_refused", path=raw_path, reason=str(exc), client=request.remote)
        raise ApiError(exc.status, str(exc)) from None
    task = _task(body.get("task"))
    priority = None if body.get("priority") is None else _priority(body["priority"])
    results = []
    for target in languages:
        result = await deps.queue.enqueue(
            NewJob(
                source=Source.MANUAL,
                task=task,
                media_path=str(media.path),
                media_size=media.size,
                media_mtime=media.mtime,
                target_language=target,
                priority=priority,
                quality=settings.quality,
            )
        )
        log.info(
            "job_requested", job_id=result.job.id, path=str(media.path), created=result.created, reason=result.reason
        )
        results.append({"job": _one_job(result.job, deps), "created": result.created, "reason": result.reason})
    deps.pool.wake()
    created = any(item["created"] for item in results)
    return web.json_response({"jobs": results}, status=201 if created else 200)


def _priority(value: Any) -> int:
    """An integer in range; JSON's 5.0 counts as 5 (JSON Schema calls it an integer too)."""
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or not _PRIORITY_RANGE[0] <= value <= _PRIORITY_RANGE[1]:
        raise ApiError(400, f"'priority' must be an integer between {_PRIORITY_RANGE[0]} and {_PRIORITY_RANGE[1]}")
    return value


def _task(raw: Any) -> Task:
    if raw is None:
        return Task.TRANSCRIBE
    try:
        return Task(raw)
    except ValueError:
        raise ApiError(400, f"unknown task {raw!r}; use transcribe or translate") from None


async def cancel_job(request: web.Request) -> web.Response:
    deps = request.app[DEPS]
    job_id = _job_id(request)
    try:
        state = await deps.queue.cancel(job_id)
        job = await deps.queue.get(job_id)
    except JobNotFound as exc:
        raise ApiError(404, str(exc)) from None
    except InvalidTransition as exc:
        raise ApiError(409, str(exc)) from None
    outcome = "cancelled" if state == JobState.CANCELLED else "cancel_requested"
    log.info("job_cancel_requested_by_api", job_id=job_id, outcome=outcome)
    return web.json_response({"job": _one_job(job, deps), "result": outcome}, status=202)


async def retry_job(request: web.Request) -> web.Response:
    deps = request.app[DEPS]
    try:
        job = await deps.queue.retry(_job_id(request))
    except JobNotFound as exc:
        raise ApiError(404, str(exc)) from None
    except InvalidTransition as exc:
        raise ApiError(409, str(exc)) from None
    deps.pool.wake()
    return web.json_response({"job": _one_job(job, deps)})


async def update_job(request: web.Request) -> web.Response:
    """`{"priority": n}`: higher runs first."""
    deps = request.app[DEPS]
    job_id = _job_id(request)
    body = await _json_object(request)
    if set(body) != {"priority"}:
        raise ApiError(400, 'send {"priority": <integer>}; only the priority can be changed')
    priority = _priority(body["priority"])
    try:
        job = await deps.queue.set_priority(job_id, priority)
    except JobNotFound as exc:
        raise ApiError(404, str(exc)) from None
    return web.json_response({"job": _one_job(job, deps)})


async def scan(request: web.Request) -> web.Response:
    deps = request.app[DEPS]
    if deps.scan is None:
        raise ApiError(503, "library scanning not available")
    result = await deps.scan()
    deps.pool.wake()
    return web.json_response({"scan": result}, status=202)


# --------------------------------------------------------------------------- live events and metrics


async def events(request: web.Request) -> web.StreamResponse:
    """Server-sent events: job_started, job_progress, job_finished, as this node's workers do them."""
    deps = request.app[DEPS]
    stop = request.app[SHUTTING_DOWN]
    response = web.StreamResponse(
        headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
    )
    await response.prepare(request)
    try:
        async with deps.events.subscribe() as queue:
            await response.write(b"retry: 3000\n: connected\n\n")
            while not stop.is_set():
                event = await next_event(queue, stop, _SSE_PING_SECONDS)
                if event is None:
                    await response.write(b": ping\n\n")
                    continue
                data = json.dumps(event, default=str, separators=(",", ":"))
                await response.write(f"event: {event.get('event', 'message')}\ndata: {data}\n\n".encode())
    except (ConnectionResetError, ConnectionError):
        pass  # the client left
    return response


async def metrics(request: web.Request) -> web.Response:
    body = await request.app[METRICS].scrape(request.app[DEPS])
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})


def add_routes(app: web.Application) -> None:
    app.router.add_get("/health", health)
    app.router.add_get("/api/status", api_status)
    app.router.add_get("/api/jobs", list_jobs)
    app.router.add_post("/api/jobs", create_job)
    app.router.add_get("/api/jobs/{id}", get_job)
    app.router.add_patch("/api/jobs/{id}", update_job)
    app.router.add_post("/api/jobs/{id}/cancel", cancel_job)
    app.router.add_post("/api/jobs/{id}/retry", retry_job)
    app.router.add_post("/api/scan", scan)
    app.router.add_get("/api/events", events)
    app.router.add_get("/metrics", metrics)
