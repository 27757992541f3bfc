"""Who may call what: the API key for /api/*, /webhooks/* and /metrics, client networks for the provider routes.

Bazarr sends no key, so the provider routes are governed by the mode and an
optional allow-list of client networks instead. Client paths (POST /api/jobs,
`video_file`) must resolve, symlinks included, to a place inside LIBRARY_PATHS.
"""

from __future__ import annotations

import hmac
import ipaddress
from collections.abc import Sequence
from pathlib import Path

from aiohttp import web
from aiohttp.typedefs import Handler

from transcriptarr.api.config import Network
from transcriptarr.api.errors import json_error
from transcriptarr.api.keys import PARTS

API_KEY_HEADER = "X-Api-Key"


def needs_key(path: str) -> bool:
    return path.startswith(("/api/", "/webhooks/")) or path == "/metrics"


@web.middleware
async def api_key_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    secret = request.app[PARTS].settings.api_key
    expected = secret.get_secret_value() if secret is not None else ""
    if expected and needs_key(request.path):
        given = request.headers.get(API_KEY_HEADER) or request.query.get("apikey") or ""
        if not hmac.compare_digest(given.encode(), expected.encode()):
            return json_error(401, "missing or wrong API key: send it in the X-Api-Key header or the apikey parameter")
    return await handler(request)


def client_allowed(remote: str | None, networks: Sequence[Network]) -> bool:
    """Empty allow-list: everyone. Otherwise the peer address must lie in one of the networks."""
    if not networks:
        return True
    if remote is None:
        return False
    try:
        address = ipaddress.ip_address(remote.split("%", 1)[0])
    except ValueError:
        return False  # e.g. a Unix socket peer: not a network client we can place
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return any(address.version == net.version and address in net for net in networks)


class OutsideLibrary(Exception):
    pass


def inside_library(raw: str, roots: Sequence[Path]) -> Path:
    """The resolved path if it lies inside one of `roots` (also resolved); else OutsideLibrary.

    Resolving first means `..` and symlinks pointing out of a library are caught.
    """
    if "\x00" in raw:
        raise OutsideLibrary("the path contains a NUL character")
    path = Path(raw).expanduser()
    if not path.is_absolute():
        raise OutsideLibrary("give an absolute path")
    resolved = path.resolve()
    if not roots:
        raise OutsideLibrary("no library is configured (LIBRARY_PATHS is empty)")
    for root in roots:
        if resolved.is_relative_to(root.resolve()):
            return resolved
    raise OutsideLibrary(f"{raw} is not inside LIBRARY_PATHS")
