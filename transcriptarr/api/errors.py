"""Error answers: `ERROR: ...` text for the Bazarr routes, JSON for the control API.

Bazarr saves whatever body it gets and keeps it if it parses as SRT (pysrt,
then pysubs2), so an error body must never look like a subtitle: it starts
with `ERROR:`, and neither an SRT arrow nor a clock time (pysubs2 takes any line
with two of them for a cue) survives from quoted tool output.
"""

from __future__ import annotations

import re

from aiohttp import web

_CLOCK = re.compile(r"(\d+):(\d+):(\d+)[.,:](\d+)")


class ApiError(Exception):
    """A request that cannot be served; becomes a JSON (control API) or text (provider) answer."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def error_text(message: str) -> str:
    defused = _CLOCK.sub(r"\1h\2m\3.\4s", message.replace("-->", "->"))
    return "ERROR: " + defused.strip() + "\n"


def provider_error(status: int, message: str) -> web.Response:
    return web.Response(status=status, text=error_text(message), content_type="text/plain", charset="utf-8")


def json_error(status: int, message: str) -> web.Response:
    return web.json_response({"error": message}, status=status)
