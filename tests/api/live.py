"""A real Transcriptarr (database, workers, HTTP server) on 127.0.0.1, run in a background thread.

Tests talk to it over loopback HTTP with blocking clients (requests, like
Bazarr, or Chromium), so the service gets an event loop of its own.
"""

from __future__ import annotations

import asyncio
import subprocess
import threading
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

import requests
from aiohttp import web

from transcriptarr.api import ApiConfig, create_app, serve
from transcriptarr.api.dependencies import ScanHook
from transcriptarr.service import Components, api_deps, build
from transcriptarr.settings import Settings

T = TypeVar("T")

BAZARR_HEADERS = {"User-Agent": "Subliminal/2.1"}


class LiveService:
    def __init__(
        self,
        settings: Settings,
        *,
        workers: bool = True,
        scan_hook: ScanHook | None = None,
        **config: Any,
    ) -> None:
        self.settings = settings
        self.workers = workers
        self.scan_hook = scan_hook
        self.config = ApiConfig.from_settings(settings, **config)
        self.port = 0
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._parts: Components | None = None
        self._app: web.Application | None = None
        self._thread = threading.Thread(target=self._main, name="live-service", daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def app(self) -> web.Application:
        assert self._app is not None
        return self._app

    @property
    def parts(self) -> Components:
        assert self._parts is not None
        return self._parts

    def __enter__(self) -> LiveService:
        self._thread.start()
        if not self._ready.wait(120):
            raise RuntimeError("the service did not start within 120 s")
        if self._error is not None:
            raise RuntimeError(f"the service failed to start: {self._error!r}") from self._error
        return self

    def __exit__(self, *exc: object) -> None:
        if self._loop is not None and self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(120)
        if self._thread.is_alive():
            raise RuntimeError("the service did not stop within 120 s")

    def call(self, work: Callable[[Components], Awaitable[T]], timeout: float = 60) -> T:
        """Run `work(parts)` in the service's loop (database checks, queueing) and return its result."""
        assert self._loop is not None

        async def run() -> T:
            return await work(self.parts)

        return asyncio.run_coroutine_threadsafe(run(), self._loop).result(timeout)

    def _main(self) -> None:
        try:
            asyncio.run(self._run())
        except BaseException as exc:
            self._error = exc
            self._ready.set()

    async def _run(self) -> None:
        async with build(self.settings) as parts:
            self._parts = parts
            self._loop = asyncio.get_running_loop()
            self._stop = asyncio.Event()
            app = self._app = create_app(api_deps(parts, scan=self.scan_hook), config=self.config)

            def started(port: int) -> None:
                self.port = port
                self._ready.set()

            running: list[Awaitable[object]] = [serve(app, "127.0.0.1", 0, self._stop, on_started=started)]
            if self.workers:
                running.append(parts.pool.run(self._stop))
            await asyncio.gather(*running)


def bazarr_post(
    url: str,
    route: str,
    audio: bytes,
    params: dict[str, str],
    *,
    read_timeout: float = 3600,
    session: requests.Session | None = None,
) -> requests.Response:
    """A request exactly as Bazarr's whisperai provider sends it.

    `files={"audio_file": bytes}` gives the part the filename "audio_file" and no
    Content-Type; the body is sent whole (Content-Length, not chunked);
    `timeout=(5, read_timeout)` is (response timeout, transcription timeout).
    """
    client = session or requests
    return client.post(
        f"{url}/{route}",
        params=params,
        files={"audio_file": audio},
        headers=BAZARR_HEADERS,
        timeout=(5, read_timeout),
    )


def to_pcm(source: Path, dest: Path, *, seconds: float | None = None) -> bytes:
    """Raw s16le 16 kHz mono, the way Bazarr makes it with ffmpeg."""
    limit = ["-t", f"{seconds}"] if seconds is not None else []
    pcm = ["-ac", "1", "-ar", "16000", "-f", "s16le", "-acodec", "pcm_s16le"]
    subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-y", "-i", str(source), *limit, *pcm, str(dest)], check=True)
    return dest.read_bytes()
