"""Who may call what: the API key for every route but a short list of open ones, client networks for Bazarr's.

With API_KEY set, every route needs it except `OPEN_ROUTES` (health, the login form, the
OpenAPI document) and Bazarr's `PROVIDER_ROUTES`: Bazarr cannot send a key, so those are
governed by the mode and an optional allow-list of client networks instead. An allow-list
of open routes, not a list of closed ones: a route added later is behind the key unless
it is named here. The key comes in the X-Api-Key header, the `apikey` query parameter
(Plex and Emby webhooks cannot send headers) or an `Authorization: Bearer` header (OpenAI
clients); a browser that logged in on /login carries a cookie that stands for it, for
reading (GET) only, so a page on another site cannot make it change anything.

Client paths (POST /api/jobs, webhooks, `video_file`) are confined to LIBRARY_PATHS by
transcriptarr/policy/confinement.py.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
from collections.abc import Sequence

from aiohttp import web
from aiohttp.typedefs import Handler

from transcriptarr.api.config import Network
from transcriptarr.api.errors import json_error
from transcriptarr.api.keys import CONFIG, DEPS
from transcriptarr.api.openai_errors import PREFIX as OPENAI_PREFIX
from transcriptarr.api.openai_errors import openai_error
from transcriptarr.policy.confinement import OutsideLibrary, inside_library

__all__ = ["OutsideLibrary", "inside_library"]  # where the API's callers have always found them

API_KEY_HEADER = "X-Api-Key"
SESSION_COOKIE = "transcriptarr_session"
# Routes anyone who can reach the port may call, with or without API_KEY.
OPEN_ROUTES = frozenset({"/health", "/login", "/logout", "/openapi.json"})
# Bazarr's routes, at the root and under HTTP_PATH_PREFIX: TRANSCRIPTARR_MODE and PROVIDER_ALLOWED_NETWORKS.
PROVIDER_ROUTES = frozenset({"/asr", "/detect-language", "/status"})
# Where a browser without the key is sent instead of a 401 (relative: works behind a reverse proxy's prefix).
LOGIN_PAGE = "login"
_READING = frozenset({"GET", "HEAD"})
_OPENAI_KEY_MISSING = "missing or wrong API key: send API_KEY as 'Authorization: Bearer <key>'"


def needs_key(path: str, prefix: str = "") -> bool:
    if path in OPEN_ROUTES or path in PROVIDER_ROUTES:
        return False
    return not (prefix and path.startswith(prefix + "/") and path[len(prefix) :] in PROVIDER_ROUTES)


def same_key(given: str, expected: str) -> bool:
    """Constant-time comparison; surrogatepass: an undecodable query byte is a mismatch, never a 500."""
    return hmac.compare_digest(given.encode("utf-8", "surrogatepass"), expected.encode("utf-8", "surrogatepass"))


def session_token(key: str) -> str:
    """What the login cookie holds: derived from the key, so the cookie never carries the key itself."""
    return hmac.new(key.encode("utf-8", "surrogatepass"), b"transcriptarr status page", hashlib.sha256).hexdigest()


def _given_key(request: web.Request) -> str:
    bearer = request.headers.get("Authorization", "")
    scheme, _, token = bearer.partition(" ")
    from_bearer = token.strip() if scheme.lower() == "bearer" else ""
    return request.headers.get(API_KEY_HEADER) or request.query.get("apikey") or from_bearer


def authorized(request: web.Request, expected: str) -> bool:
    given = _given_key(request)
    if given:
        return same_key(given, expected)
    cookie = request.cookies.get(SESSION_COOKIE, "")
    return request.method in _READING and bool(cookie) and same_key(cookie, session_token(expected))


@web.middleware
async def api_key_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    secret = request.app[DEPS].settings.api_key
    expected = secret.get_secret_value() if secret is not None else ""
    if expected and needs_key(request.path, request.app[CONFIG].path_prefix) and not authorized(request, expected):
        if request.path == "/" and request.method in _READING:  # a person at the status page: the login form
            raise web.HTTPSeeOther(LOGIN_PAGE)
        if request.path.startswith(OPENAI_PREFIX):  # OpenAI's clients read their own error shape
            return openai_error(401, _OPENAI_KEY_MISSING, code="invalid_api_key")
        return json_error(
            401,
            "missing or wrong API key: send it in the X-Api-Key header, the apikey parameter "
            "or an Authorization: Bearer header (the status page: log in at /login)",
        )
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
