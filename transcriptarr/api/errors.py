"""Error answers: `ERROR: ...` text for the Bazarr routes, JSON for the control API.

Bazarr saves whatever body it gets and keeps it if it parses as SRT, so an
error body must never look like a subtitle: it starts with `ERROR:` and never
contains an SRT timing arrow.
"""

from __future__ import annotations

from aiohttp import web


class ApiError(Exception):
    """A request that cannot be served; becomes a JSON (control API) or text (provider) answer."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def error_text(message: str) -> str:
    # "-->" is what SRT parsers look for; keep any quoted tool output from matching.
    return "ERROR: " + message.replace("-->", "->").strip() + "\n"


def provider_error(status: int, message: str) -> web.Response:
    return web.Response(status=status, text=error_text(message), content_type="text/plain", charset="utf-8")


def json_error(status: int, message: str) -> web.Response:
    return web.json_response({"error": message}, status=status)
