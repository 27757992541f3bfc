"""The HTTP application: `create_app(deps)` builds it, `serve(app, host, port, stop)` runs it.

It runs in the service's event loop next to the workers; inference happens in
threads, so the server stays responsive while they transcribe.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from typing import Any

import structlog
from aiohttp import web
from aiohttp.typedefs import Handler

from transcriptarr.api import arr_webhooks, bazarr, control, openai_api, openapi, page, subgen_routes, views, webhooks
from transcriptarr.api.config import ApiConfig
from transcriptarr.api.connections import ConnectionLimits
from transcriptarr.api.dependencies import ApiDeps
from transcriptarr.api.errors import ApiError, json_error, provider_error
from transcriptarr.api.intake import sweep_spool
from transcriptarr.api.keys import CONFIG, DEPS, DETECT_SLOTS, METRICS, SHUTTING_DOWN, SNAPSHOTS
from transcriptarr.api.listener import Listener
from transcriptarr.api.listening import bind_failure, warn_if_open
from transcriptarr.api.metrics import ApiMetrics
from transcriptarr.api.openai_errors import openai_error_middleware
from transcriptarr.api.security import api_key_middleware
from transcriptarr.api.snapshots import Snapshots
from transcriptarr.api.stall import StallGuard
from transcriptarr.db.outage import describe_error, is_unavailable

log = structlog.get_logger(__name__)

# Reads of the request body this large at a time (aiohttp's default, 64 KiB, slows big uploads).
_READ_BUFSIZE = 1 << 20
# A stopping server gives requests still being answered this long.
_SHUTDOWN_TIMEOUT = 10.0


def _is_json_route(path: str) -> bool:
    return (
        path.startswith(("/api/", "/webhooks/"))
        or path in ("/health", "/metrics", "/openapi.json")
        or path in subgen_routes.PATHS
    )


@web.middleware
async def error_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """ApiError becomes its answer; anything unforeseen a 500 with a reason, never a dropped connection."""
    try:
        return await handler(request)
    except ApiError as exc:
        if _is_json_route(request.path):
            return json_error(exc.status, exc.message)
        return provider_error(exc.status, exc.message)
    except web.HTTPException as exc:
        if exc.status >= 400 and request.path.startswith(("/api/", "/webhooks/")):
            answer = json_error(exc.status, exc.reason)
            if "Allow" in exc.headers:  # a 405 must say which methods would do
                answer.headers["Allow"] = exc.headers["Allow"]
            return answer
        raise
    except (ConnectionError, asyncio.CancelledError):
        raise
    except Exception as exc:
        if is_unavailable(exc):  # an outage, not a bug: say so, and that it is temporary
            error = describe_error(exc)
            log.warning("http_database_unavailable", method=request.method, path=request.path, error=error)
            reason = f"the database is unavailable ({error}); the service keeps retrying, try again shortly"
            return json_error(503, reason) if _is_json_route(request.path) else provider_error(503, reason)
        log.exception("http_handler_failed", method=request.method, path=request.path)
        reason = f"internal error: {type(exc).__name__}: {exc}"
        return json_error(500, reason) if _is_json_route(request.path) else provider_error(500, reason)


def create_app(deps: ApiDeps, *, config: ApiConfig | None = None) -> web.Application:
    """The whole HTTP surface; `config` defaults to the one derived from `deps.settings`."""
    config = config or ApiConfig.from_settings(deps.settings)
    metrics = ApiMetrics()
    # openai_error_middleware answers /v1/* failures in OpenAI's error shape before error_middleware sees them.
    middlewares = [metrics.middleware(), error_middleware, openai_error_middleware, api_key_middleware]
    middlewares.append(StallGuard().middleware)  # database calls bounded while it stalls (api/stall.py)
    app = web.Application(middlewares=middlewares)
    app[DEPS] = deps
    app[CONFIG] = config
    app[METRICS] = metrics
    app[SHUTTING_DOWN] = asyncio.Event()
    app[DETECT_SLOTS] = asyncio.Semaphore(1)
    app[SNAPSHOTS] = Snapshots(lambda: views.health(deps), lambda: views.status(deps), ttl=config.snapshot_ttl_seconds)
    bazarr.add_routes(app, config.path_prefix)
    control.add_routes(app)
    openai_api.add_routes(app)
    openapi.add_routes(app)
    page.add_routes(app)
    webhooks.add_routes(app)
    arr_webhooks.add_routes(app)  # both need webhooks' state
    subgen_routes.add_routes(app)
    app.cleanup_ctx.append(_spool)
    app.cleanup_ctx.append(_count_jobs)
    app.on_shutdown.append(_stop_long_requests)
    return app


async def _spool(app: web.Application) -> AsyncIterator[None]:
    spool = app[CONFIG].spool_dir
    await asyncio.to_thread(spool.mkdir, parents=True, exist_ok=True)
    removed = await asyncio.to_thread(sweep_spool, spool)
    if removed:
        log.info("spool_partial_uploads_removed", count=removed, folder=str(spool))
    yield


async def _count_jobs(app: web.Application) -> AsyncIterator[None]:
    task = asyncio.create_task(app[METRICS].follow_jobs(app[DEPS]), name="metrics-job-events")
    yield
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


async def _stop_long_requests(app: web.Application) -> None:
    app[SHUTTING_DOWN].set()


async def serve(
    app: web.Application,
    host: str,
    port: int,
    stop: asyncio.Event,
    *,
    on_started: Callable[[int], None] | None = None,
    limits: ConnectionLimits | None = None,
) -> None:
    """Serve until `stop` is set, then answer what is in flight and clean up.

    `port=0` picks a free port; `on_started` is told the port actually bound. `limits` (default: from the
    settings and the open-files limit) bound header time, idle time and connections (api/connections.py).
    """
    limits = limits or ConnectionLimits.from_settings(app[DEPS].settings)
    if limits.lowered:
        log.warning(
            "http_connection_limit_lowered",
            max_connections=limits.max_connections,
            configured=limits.configured_max,
            hint="the open-files limit leaves room for no more; raise it (LimitNOFILE in systemd, "
            "`ulimit -n`, docker's --ulimit nofile) to serve more connections at once",
        )
    options: dict[str, Any] = {"read_bufsize": _READ_BUFSIZE, "access_log": None}
    runner = web.AppRunner(app, handle_signals=False, shutdown_timeout=_SHUTDOWN_TIMEOUT, **options)
    await runner.setup()
    assert runner.server is not None  # set by setup()
    listener = Listener(runner.server, limits, **options)
    try:
        try:
            addresses = await listener.start(host, port, backlog=1024)
        except OSError as exc:
            log.error("http_bind_failed", host=host, port=port, error=str(exc))
            raise bind_failure(host, port, exc) from exc
        bound = int(addresses[0][1])
        log.info(
            "http_listening",
            host=host,
            port=bound,
            prefix=app[CONFIG].path_prefix or None,
            max_connections=limits.max_connections,
            max_connections_per_client=limits.per_client,
        )
        warn_if_open(app, addresses, bound)
        if on_started is not None:
            on_started(bound)
        await stop.wait()
    finally:
        log.info("http_stopping")
        await listener.close()
        await runner.cleanup()
