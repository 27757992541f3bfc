"""Calls to a media server's HTTP API: one aiohttp session per client, a timeout on every call,
and errors that say what to check."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import aiohttp

# A media server that takes longer than this to list an item's files is as good as down.
DEFAULT_TIMEOUT = aiohttp.ClientTimeout(total=30, connect=10)


class MediaServerError(Exception):
    """A call to a media server failed; `retry` says whether trying again later may help."""

    def __init__(self, message: str, *, retry: bool) -> None:
        super().__init__(message)
        self.retry = retry


class ServerUnreachable(MediaServerError):
    """Down, too slow, or answering 5xx: worth trying again later."""

    def __init__(self, message: str) -> None:
        super().__init__(message, retry=True)


class KeyRejected(MediaServerError):
    """401 or 403: the configured key is wrong; trying again cannot help."""

    def __init__(self, message: str) -> None:
        super().__init__(message, retry=False)


class ItemNotFound(MediaServerError):
    """The server does not know the item (deleted since, or another server's id)."""

    def __init__(self, message: str) -> None:
        super().__init__(message, retry=False)


class ServerApi:
    """JSON over HTTP to one media server; `close()` when done with it."""

    def __init__(
        self,
        label: str,
        base_url: str,
        headers: Mapping[str, str],
        *,
        url_setting: str,
        key_setting: str,
        timeout: aiohttp.ClientTimeout = DEFAULT_TIMEOUT,
    ) -> None:
        self.label = label  # "Jellyfin": how messages name the server
        self.base_url = base_url.rstrip("/")
        self.url_setting = url_setting  # "JELLYFIN_URL": what to check when it cannot be reached
        self.key_setting = key_setting  # "JELLYFIN_API_KEY": what to check when it refuses us
        self.timeout = timeout
        self._headers = dict(headers)
        self._session: aiohttp.ClientSession | None = None

    @property
    def where(self) -> str:
        return f"{self.label} at {self.base_url}"

    async def call(
        self, method: str, path: str, *, params: Mapping[str, str] | None = None, item: str | None = None
    ) -> Any:
        """The decoded JSON answer (None for an empty one); `item` names the item for a 404 message."""
        if self._session is None:
            self._session = aiohttp.ClientSession(headers=self._headers, timeout=self.timeout)
        try:
            async with self._session.request(method, self.base_url + path, params=params) as response:
                status, reason = response.status, response.reason or ""
                body = await response.read()
        except TimeoutError:
            raise ServerUnreachable(f"{self.where} did not answer within {self.timeout.total:g} s") from None
        except aiohttp.ClientError as exc:
            detail = str(exc) or type(exc).__name__
            raise ServerUnreachable(f"cannot reach {self.where}: {detail}; check {self.url_setting}") from None
        if status in (401, 403):
            raise KeyRejected(f"{self.where} refused the key ({status} {reason}); check {self.key_setting}")
        if status == 404 and item is not None:
            raise ItemNotFound(f"{self.where} has no {item}")
        if status >= 500 or status in (408, 429):
            raise ServerUnreachable(f"{self.where} answered {status} {reason} to {method} {path}")
        if status >= 400:
            raise MediaServerError(
                f"{self.where} answered {status} {reason} to {method} {path}; is {self.url_setting} right?",
                retry=False,
            )
        if not body.strip():
            return None
        try:
            return json.loads(body)
        except ValueError:
            raise MediaServerError(
                f"{self.where} answered {path} with something that is not JSON; is {self.url_setting} "
                f"the address of {self.label}?",
                retry=False,
            ) from None

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None
