"""Connection limits of the HTTP server: a deadline for request headers, and how many connections may be open.

Without them about 1,000 clients sending their headers one byte every 10 s took every file descriptor:
/health stopped answering and jobs failed ("Too many open files"). aiohttp (3.14) closes a connection that is
idle for `keepalive_timeout` but has no deadline for headers being trickled in, so `GuardedRequestHandler`, a
small subclass of its connection handler, adds one; `transcriptarr.api.listener` counts connections and
refuses extra ones at accept time.
"""

from __future__ import annotations

import asyncio
import resource
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from aiohttp.web_protocol import RequestHandler

if TYPE_CHECKING:
    from aiohttp import web

    from transcriptarr.settings import Settings

# File descriptors kept for everything but HTTP connections: the database, ffprobe/ffmpeg pipes, work files,
# the watcher, models, logs.
FD_RESERVE = 256
# What one connection may hold: its socket, and the spool file of an upload.
FDS_PER_CONNECTION = 2
# However low the open-files limit, serve at least this many connections.
MIN_CONNECTIONS = 16


@dataclass(frozen=True)
class ConnectionLimits:
    """HTTP_MAX_CONNECTIONS, HTTP_MAX_CONNECTIONS_PER_CLIENT, HTTP_HEADER_TIMEOUT_SECONDS and
    HTTP_KEEPALIVE_TIMEOUT_SECONDS; `configured_max` is HTTP_MAX_CONNECTIONS before the open-files limit."""

    max_connections: int
    per_client: int
    header_timeout: float
    keepalive_timeout: float
    configured_max: int

    @classmethod
    def from_settings(cls, settings: Settings, *, open_files: int | None = None) -> ConnectionLimits:
        """The settings, with HTTP_MAX_CONNECTIONS lowered to what `open_files` (default: this process's soft
        RLIMIT_NOFILE) allows after the workers' reserve."""
        wanted = settings.http_max_connections
        return cls(
            max_connections=min(wanted, connections_allowed(open_files)),
            per_client=settings.http_max_connections_per_client,
            header_timeout=settings.http_header_timeout_seconds,
            keepalive_timeout=settings.http_keepalive_timeout_seconds,
            configured_max=wanted,
        )

    @property
    def lowered(self) -> bool:
        return self.max_connections < self.configured_max


def connections_allowed(open_files: int | None = None) -> int:
    """How many connections fit in the open-files limit, leaving FD_RESERVE for the rest of the service."""
    if open_files is None:
        open_files = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    if open_files == resource.RLIM_INFINITY:
        return 1 << 20
    return max(MIN_CONNECTIONS, (open_files - FD_RESERVE) // FDS_PER_CONNECTION)


class GuardedRequestHandler(RequestHandler):
    """aiohttp's connection handler, plus: a request's headers must arrive within `header_timeout` (counted from
    the connection's start for its first request, from the first byte of each later one), and `on_lost` is
    called once the connection has ended.

    Only the headers are timed: an upload's body, a long wait with interim 100 Continue answers
    (api/waiting.py) and the idle time between kept-alive requests (`keepalive_timeout`, aiohttp's own) are not.
    """

    def __init__(
        self,
        manager: web.Server,
        *,
        loop: asyncio.AbstractEventLoop,
        header_timeout: float,
        on_header_timeout: Callable[[], None],
        on_lost: Callable[[], None],
        **options: Any,
    ) -> None:
        super().__init__(manager, loop=loop, **options)
        self._header_timeout = header_timeout
        self._header_deadline: asyncio.TimerHandle | None = None
        self._on_header_timeout = on_header_timeout
        self._on_lost = on_lost

    def waiting_for_request(self) -> bool:
        """True while no request is in progress: the connection waits for (the rest of) the next one's headers.

        The same test aiohttp makes before closing an idle connection (RequestHandler._process_keepalive)."""
        waiter = self._waiter
        return waiter is not None and not waiter.done()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        self._arm()

    def data_received(self, data: bytes) -> None:
        if self._header_deadline is None and data and self.waiting_for_request():
            self._arm()  # the first bytes of a kept-alive connection's next request
        requests_before = self._request_count  # aiohttp counts each request whose headers it has parsed
        super().data_received(data)
        if self._request_count != requests_before:
            self._disarm()

    def connection_lost(self, exc: BaseException | None) -> None:
        self._disarm()
        try:
            super().connection_lost(exc)
        finally:
            self._on_lost()

    def _arm(self) -> None:
        self._disarm()
        self._header_deadline = self._loop.call_later(self._header_timeout, self._headers_too_slow)

    def _disarm(self) -> None:
        if self._header_deadline is not None:
            self._header_deadline.cancel()
            self._header_deadline = None

    def _headers_too_slow(self) -> None:
        self._header_deadline = None
        if self.transport is not None:
            self._on_header_timeout()
            self.force_close()
