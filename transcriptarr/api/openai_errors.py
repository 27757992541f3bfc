"""Errors of the OpenAI-compatible routes (/v1/*), in OpenAI's own shape.

OpenAI's clients read `{"error": {"message", "type", "param", "code"}}` and pick
their exception from the status (400 BadRequestError, 401 AuthenticationError,
404 NotFoundError, ...), so every answer under /v1/ that is not a success has
that shape: those the handlers raise, aiohttp's own 404/405, and crashes.
"""

from __future__ import annotations

import asyncio

import structlog
from aiohttp import web
from aiohttp.typedefs import Handler

from transcriptarr.api.errors import ApiError
from transcriptarr.db.outage import describe_error, is_unavailable

log = structlog.get_logger(__name__)

PREFIX = "/v1/"


class OpenAIError(ApiError):
    """An ApiError that also names the request field at fault (`param`) and a machine-readable `code`."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        param: str | None = None,
        code: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(status, message)
        self.param = param
        self.code = code
        self.headers = headers


def openai_error(
    status: int,
    message: str,
    *,
    param: str | None = None,
    code: str | None = None,
    headers: dict[str, str] | None = None,
) -> web.Response:
    kind = "server_error" if status >= 500 else "invalid_request_error"
    body = {"error": {"message": message, "type": kind, "param": param, "code": code}}
    return web.json_response(body, status=status, headers=headers)


@web.middleware
async def openai_error_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Under /v1/: every failure becomes an OpenAI error answer; other paths pass untouched."""
    if not request.path.startswith(PREFIX):
        return await handler(request)
    try:
        return await handler(request)
    except OpenAIError as exc:
        return openai_error(exc.status, exc.message, param=exc.param, code=exc.code, headers=exc.headers)
    except ApiError as exc:
        return openai_error(exc.status, exc.message)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        answer = openai_error(exc.status, _http_reason(request, exc), code=_http_code(exc.status))
        if "Allow" in exc.headers:  # a 405 must say which methods would do
            answer.headers["Allow"] = exc.headers["Allow"]
        return answer
    except (ConnectionError, asyncio.CancelledError):
        raise
    except Exception as exc:
        if is_unavailable(exc):
            error = describe_error(exc)
            log.warning("http_database_unavailable", method=request.method, path=request.path, error=error)
            return openai_error(
                503, f"the database is unavailable ({error}); the service keeps retrying, try again shortly"
            )
        log.exception("http_handler_failed", method=request.method, path=request.path)
        return openai_error(500, f"internal error: {type(exc).__name__}: {exc}")


def _http_reason(request: web.Request, exc: web.HTTPException) -> str:
    if exc.status == 404:
        return (
            f"no such route: {request.method} {request.path}; this server has POST /v1/audio/transcriptions, "
            "POST /v1/audio/translations, GET /v1/models and GET /v1/models/{model}"
        )
    if exc.status == 405:
        return f"{request.method} is not allowed on {request.path}; use {exc.headers.get('Allow', 'another method')}"
    return f"{exc.reason} ({request.method} {request.path})"


def _http_code(status: int) -> str | None:
    return {404: "unknown_url", 405: "method_not_allowed"}.get(status)
