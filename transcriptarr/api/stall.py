"""Every route answers while the database stalls (issue 15).

A database that hangs (a server that stopped answering, another process holding SQLite's
write lock) must not hang HTTP: Bazarr and dashboards would get nothing for as long as it
lasts. This middleware bounds the database part of every request (db/call_bound.py):

- each database call of a request answers within REQUEST_DATABASE_SECONDS, or the request
  is answered 503 saying the database did not answer (in the route's error shape: JSON for
  the control API, `ERROR: ...` text for Bazarr, OpenAI's error object under /v1/; the
  error middlewares shape it, as for an outage). Long waits (Bazarr's `/asr` waiting for
  its transcription) are not cut short: only their database calls are bounded;
- the status views (the status page, `/api/status`, `/metrics`) answer within
  SNAPSHOT_SECONDS: fresh, or else the last answer they gave, marked stale (an `Age`
  header, and `stale`, `stale_seconds`, `stale_reason` in the JSON, a notice on the page,
  `transcriptarr_stale_seconds` in the metrics), or a 503 when there is none yet;
- `/health` has its own bounds (db/database.py) and says "degraded" meanwhile.
"""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass
from html import escape

from aiohttp import web
from aiohttp.typedefs import Handler

from transcriptarr.db.call_bound import calls_bounded
from transcriptarr.db.outage import describe_error, is_unavailable

REQUEST_DATABASE_SECONDS = 10.0
SNAPSHOT_SECONDS = 3.0
# The status views, by route, and how a stale copy of each is marked.
STATUS_VIEWS = {"/": "html", "/api/status": "json", "/metrics": "metrics"}


@dataclass(frozen=True)
class _Answer:
    body: bytes
    content_type: str
    at: float  # time.monotonic() when it was given


class StallGuard:
    """The middleware, with the last good answer of each status view (one app's)."""

    def __init__(self) -> None:
        self._last: dict[str, _Answer] = {}

    @web.middleware
    async def middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        view = _view(request)
        if view is None:
            with calls_bounded(REQUEST_DATABASE_SECONDS):
                return await handler(request)
        try:
            with calls_bounded(SNAPSHOT_SECONDS):
                # The whole view too: not every read of a view goes through `Database`.
                async with asyncio.timeout(SNAPSHOT_SECONDS + 1):
                    response = await handler(request)
        except Exception as exc:
            kept = self._last.get(view)
            if kept is None or not is_unavailable(exc):
                raise  # 503 with the reason (app.py's error middleware), or a real error
            return _stale(STATUS_VIEWS[view], kept, exc)
        if response.status == 200 and isinstance(response, web.Response) and isinstance(response.body, bytes):
            content_type = response.headers.get("Content-Type", response.content_type)
            self._last[view] = _Answer(response.body, content_type, time.monotonic())
        return response


def _view(request: web.Request) -> str | None:
    """The status view this GET asks for, if any."""
    if request.method != "GET":
        return None
    resource = request.match_info.route.resource
    canonical = resource.canonical if resource is not None else None
    return canonical if canonical in STATUS_VIEWS else None


def _stale(kind: str, kept: _Answer, exc: BaseException) -> web.Response:
    age = time.monotonic() - kept.at
    reason = f"the database does not answer ({describe_error(exc)}); this is the answer of {age:.0f} s ago"
    headers = {"Content-Type": kept.content_type, "Age": str(int(age))}
    body = kept.body
    if kind == "json":
        data = json.loads(body)
        data.update(stale=True, stale_seconds=round(age, 1), stale_reason=reason)
        body = json.dumps(data).encode()
    elif kind == "html":
        notice = f'<p class="meta" id="stale" role="alert"><strong>Not current:</strong> {escape(reason)}.</p>'
        body = body.replace(b"<body>", b"<body>" + notice.encode(), 1)
    else:  # Prometheus text: one more gauge says how old the rest is
        body += (
            b"# HELP transcriptarr_stale_seconds Age of these values: the database did not answer this scrape.\n"
            b"# TYPE transcriptarr_stale_seconds gauge\n" + f"transcriptarr_stale_seconds {age:.1f}\n".encode()
        )
    return web.Response(body=body, headers=headers)
