"""Where the HTTP server listens: why it cannot, and a warning when it is open to the network without a key."""

from __future__ import annotations

import errno
import ipaddress
import socket
from collections.abc import Sequence
from typing import Any

import structlog
from aiohttp import web

from transcriptarr.api.keys import DEPS

log = structlog.get_logger(__name__)


class CannotListen(OSError):
    """The server could not bind; the message is one line naming the cause and the setting to change."""


def bind_failure(host: str, port: int, exc: OSError) -> CannotListen:
    """One line with the real cause: an unknown host is not a port in use."""
    where = f"cannot listen on {host}:{port}"
    if isinstance(exc, socket.gaierror):
        reason = (
            f"{where}: HTTP_HOST {host!r} is neither an address nor a name that resolves ({exc.strerror}); "
            "set HTTP_HOST to an address of this machine, 127.0.0.1 or 0.0.0.0"
        )
    elif exc.errno == errno.EADDRINUSE:
        reason = f"{where}: the port is in use by another program; stop it or set HTTP_PORT to a free port"
    elif exc.errno == errno.EADDRNOTAVAIL:
        reason = f"{where}: {host} is not an address of this machine; set HTTP_HOST to one of its addresses or 0.0.0.0"
    elif exc.errno == errno.EACCES:
        reason = f"{where}: permission denied (ports below 1024 need privileges); set HTTP_PORT to 1024 or above"
    else:
        reason = f"{where} ({exc.strerror or exc}); check HTTP_HOST and HTTP_PORT"
    failure = CannotListen(reason)
    failure.errno = exc.errno
    return failure


def _loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host.split("%", 1)[0]).is_loopback
    except ValueError:
        return False


def warn_if_open(app: web.Application, addresses: Sequence[Any], port: int) -> None:
    """Once at start-up: bound beyond loopback with no API_KEY, anyone on the network may control the service."""
    secret = app[DEPS].settings.api_key
    if secret is not None and secret.get_secret_value():
        return
    reachable = sorted({str(address[0]) for address in addresses if not _loopback(str(address[0]))})
    if reachable:
        log.warning(
            "http_open_without_key",
            addresses=reachable,
            port=port,
            hint="anyone who can reach this port can queue, cancel and scan and read every path and error: "
            "set API_KEY, or HTTP_HOST=127.0.0.1 to serve this machine only",
        )
