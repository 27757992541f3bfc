"""The HTTP server's accept loop: connections are counted per client address and in all, extra ones refused.

asyncio's own accept loop (loop.create_server) offers no hook before a connection gets its handler, and when
the process is out of file descriptors it logs `socket.accept() out of system resource` for every attempt
(413,586 lines in 102 s). This one:

* refuses a connection over HTTP_MAX_CONNECTIONS_PER_CLIENT, or over HTTP_MAX_CONNECTIONS when no connection
  can make room, with a one-line 503 and an immediate close, before any handler exists;
* at HTTP_MAX_CONNECTIONS makes room by closing the connection that has waited longest without sending a
  request (idle keep-alive, or headers still trickling in): a flood of slow clients cannot lock out /health;
* when accept() fails for lack of resources (EMFILE, ENFILE, ENOBUFS, ENOMEM), pauses accepting for
  ACCEPT_PAUSE_SECONDS and logs one line per burst.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import ipaddress
import socket
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import structlog
from aiohttp import web

from transcriptarr.api.bursts import Burst
from transcriptarr.api.connections import ConnectionLimits, GuardedRequestHandler

log = structlog.get_logger(__name__)

ACCEPT_PAUSE_SECONDS = 0.5
# Connections taken per wake-up of the listening socket, so that a flood does not starve the event loop.
_ACCEPTS_PER_WAKEUP = 64
_OUT_OF_RESOURCES = frozenset({errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM})


@dataclass(eq=False)
class _Slot:
    """One accepted connection, from accept() until its handler's connection_lost."""

    client: str
    handler: GuardedRequestHandler | None = None
    released: bool = field(default=False)


def client_of(address: Any) -> str:
    """The client's address without the port; an IPv4-mapped IPv6 address as plain IPv4."""
    host = str(address[0]) if isinstance(address, tuple) and address else str(address)
    with contextlib.suppress(ValueError):
        parsed = ipaddress.ip_address(host.split("%", 1)[0])
        if isinstance(parsed, ipaddress.IPv6Address) and parsed.ipv4_mapped is not None:
            return str(parsed.ipv4_mapped)
    return host


def refusal(reason: str) -> bytes:
    """The whole answer to a refused connection: 503, the reason on one line, closed."""
    body = (reason + "\n").encode()
    head = (
        "HTTP/1.1 503 Service Unavailable\r\n"
        "Content-Type: text/plain; charset=utf-8\r\n"
        "Retry-After: 5\r\n"
        "Connection: close\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


async def bind(host: str, port: int, backlog: int) -> list[socket.socket]:
    """Listening sockets on every address `host` resolves to (one for 0.0.0.0, loopback IPv4 and IPv6 for
    "localhost"), like loop.create_server; OSError (socket.gaierror for a name that does not resolve) if not."""
    loop = asyncio.get_running_loop()
    infos = await loop.getaddrinfo(
        host or None, port, family=socket.AF_UNSPEC, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
    )
    sockets: list[socket.socket] = []
    try:
        for family, kind, proto, _, address in dict.fromkeys(infos):
            try:
                sock = socket.socket(family, kind, proto)
            except OSError:  # an address family this host lacks (IPv6 switched off)
                continue
            sockets.append(sock)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if family == socket.AF_INET6:  # "::" must not also take IPv4: 0.0.0.0 may be bound beside it
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            sock.bind(address)
            sock.listen(backlog)
            sock.setblocking(False)
    except BaseException:
        for sock in sockets:
            sock.close()
        raise
    if not sockets:
        raise OSError(errno.EAFNOSUPPORT, f"no usable address for {host!r}")
    return sockets


class Listener:
    """Accepts connections for `server` (an aiohttp web.Server) within `limits`; `options` go to each
    connection's handler (read_bufsize, access_log, ...)."""

    def __init__(self, server: web.Server, limits: ConnectionLimits, **options: Any) -> None:
        self._server = server
        self._limits = limits
        self._options = {"keepalive_timeout": limits.keepalive_timeout, **options}
        self._sockets: list[socket.socket] = []
        self._paused: asyncio.TimerHandle | None = None
        self._slots: dict[_Slot, None] = {}  # open connections, oldest first
        self._per_client: Counter[str] = Counter()
        self._handing_over: set[asyncio.Task[None]] = set()
        self._refused = Burst(
            lambda **fields: log.warning("http_connections_refused", **fields),
            lambda repeated, seconds: log.warning(
                "http_connections_refused_summary", repeated=repeated, seconds=seconds
            ),
        )
        self._timed_out = Burst(
            lambda **fields: log.info("http_header_timeout", **fields),
            lambda repeated, seconds: log.info("http_header_timeout_summary", repeated=repeated, seconds=seconds),
        )
        self._accept_failed = Burst(
            lambda **fields: log.warning("http_accept_failed", **fields),
            lambda repeated, seconds: log.warning("http_accept_failed_summary", repeated=repeated, seconds=seconds),
        )

    @property
    def addresses(self) -> list[Any]:
        return [sock.getsockname() for sock in self._sockets]

    @property
    def open_connections(self) -> int:
        return len(self._slots)

    async def start(self, host: str, port: int, *, backlog: int = 1024) -> list[Any]:
        """Bind and start accepting; the addresses bound. OSError when it cannot listen."""
        self._sockets = await bind(host, port, backlog)
        self._watch()
        return self.addresses

    async def close(self) -> None:
        """Stop accepting (open connections are left to the runner's shutdown)."""
        self._unwatch()
        if self._paused is not None:
            self._paused.cancel()
            self._paused = None
        for sock in self._sockets:
            sock.close()
        self._sockets = []
        for task in list(self._handing_over):
            task.cancel()
        await asyncio.gather(*self._handing_over, return_exceptions=True)
        for burst in (self._refused, self._timed_out, self._accept_failed):
            burst.close()

    # --- accepting ---
    def _watch(self) -> None:
        loop = asyncio.get_running_loop()
        for sock in self._sockets:
            loop.add_reader(sock.fileno(), self._accept, sock)

    def _unwatch(self) -> None:
        loop = asyncio.get_running_loop()
        for sock in self._sockets:
            loop.remove_reader(sock.fileno())

    def _accept(self, listening: socket.socket) -> None:
        for _ in range(_ACCEPTS_PER_WAKEUP):
            try:
                conn, address = listening.accept()
            except (BlockingIOError, InterruptedError, ConnectionAbortedError):
                return
            except OSError as exc:
                if exc.errno in _OUT_OF_RESOURCES:
                    self._pause(exc)
                    return
                continue  # a connection that failed on its way in (EPROTO, ENETDOWN, a firewall's EPERM)
            self._admit(conn, client_of(address))

    def _pause(self, exc: OSError) -> None:
        """Out of file descriptors or memory: the pending connections stay in the backlog; try again shortly."""
        self._accept_failed.hit(
            error=f"{exc.strerror} ({errno.errorcode.get(exc.errno or 0, exc.errno)})",
            open_connections=self.open_connections,
            pause_seconds=ACCEPT_PAUSE_SECONDS,
            hint="the process is out of file descriptors or memory: raise LimitNOFILE (systemd) or "
            "`ulimit -n`, or lower HTTP_MAX_CONNECTIONS",
        )
        self._unwatch()
        self._paused = asyncio.get_running_loop().call_later(ACCEPT_PAUSE_SECONDS, self._resume)

    def _resume(self) -> None:
        self._paused = None
        if self._sockets:
            self._watch()

    def _admit(self, conn: socket.socket, client: str) -> None:
        limits = self._limits
        if self._per_client[client] >= limits.per_client:
            reason = (
                f"too many connections from {client} ({self._per_client[client]} open, "
                f"HTTP_MAX_CONNECTIONS_PER_CLIENT={limits.per_client}); close idle connections and try again"
            )
            self._refuse(conn, client, "per_client", reason)
            return
        if len(self._slots) >= limits.max_connections and not self._make_room():
            reason = (
                f"the server has its maximum of {limits.max_connections} connections open, all busy "
                "(HTTP_MAX_CONNECTIONS); try again shortly"
            )
            self._refuse(conn, client, "total", reason)
            return
        slot = _Slot(client)
        self._slots[slot] = None
        self._per_client[client] += 1
        task = asyncio.get_running_loop().create_task(self._hand_over(conn, slot))
        self._handing_over.add(task)
        task.add_done_callback(self._handing_over.discard)

    def _refuse(self, conn: socket.socket, client: str, limit: str, reason: str) -> None:
        with contextlib.suppress(OSError):
            conn.setblocking(False)
            conn.send(refusal(reason))  # a fresh socket's send buffer is empty: this never blocks
            # Read what the request sent so far: closing with unread data would reset the connection, and the
            # client would likely lose the 503 (data arriving later still can; the refusal is best effort).
            conn.recv(1 << 16)
        conn.close()
        self._refused.hit(client=client, limit=limit, reason=reason)

    def _make_room(self) -> bool:
        """Close the oldest connection that is not in a request (idle, or still sending its headers)."""
        for slot in self._slots:
            handler = slot.handler
            if handler is not None and handler.waiting_for_request():
                self._release(slot)
                handler.force_close()
                return True
        return False

    async def _hand_over(self, conn: socket.socket, slot: _Slot) -> None:
        loop = asyncio.get_running_loop()

        def handler() -> GuardedRequestHandler:
            slot.handler = GuardedRequestHandler(
                self._server,
                loop=loop,
                header_timeout=self._limits.header_timeout,
                on_header_timeout=lambda: self._timed_out.hit(client=slot.client, seconds=self._limits.header_timeout),
                on_lost=lambda: self._release(slot),
                **self._options,
            )
            return slot.handler

        try:
            conn.setblocking(False)
            await loop.connect_accepted_socket(handler, conn)
        except OSError:  # the client left before its connection was set up
            conn.close()
            self._release(slot)
        except BaseException:
            conn.close()
            self._release(slot)
            raise

    def _release(self, slot: _Slot) -> None:
        if slot.released:
            return
        slot.released = True
        self._slots.pop(slot, None)
        self._per_client[slot.client] -= 1
        if self._per_client[slot.client] <= 0:
            del self._per_client[slot.client]
