"""A client for Bazarr's own REST API (BAZARR_URL, BAZARR_API_KEY): wanted lists, item look-ups, rescans, uploads.

    async with BazarrClient(url, key, timeout=300) as bazarr:
        version = await bazarr.check()
        for item in await bazarr.wanted_movies(): ...

Bazarr's quirks that shape this client (see BAZARR_CONTRACT.md):
- a wrong URL base is answered with a redirect to the web UI, not a 404, so
  redirects are never followed: they mean "BAZARR_URL lacks the URL base";
- array parameters are named literally `episodeid[]`, `radarrid[]`; a plain
  `radarrid=5` is silently ignored (and all movies come back), so look-ups also
  keep only the ids they asked for;
- the `episodeid[]` filter of the wanted episodes never matches: lists are paged;
- scan-disk and uploads run synchronously inside Bazarr: they get the long timeout.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, Literal

import aiohttp

from transcriptarr import __version__

Kind = Literal["episode", "movie"]

# Bazarr's own codes for language variants: code2 -> (the language as Whisper knows it, its name).
# A subtitle file counts for them only under a name with a region (`pt-BR`), which Bazarr gives
# the files it saves itself, e.g. an upload.
VARIANTS = {
    "pb": ("pt", "Brazilian Portuguese"),
    "ea": ("es", "Latin American Spanish"),
    "zt": ("zh", "Traditional Chinese"),
}
# The variants Transcriptarr makes (bazarr_sync.py says when): they reach Bazarr only by upload.
UPLOAD_ONLY = frozenset({"pb", "ea"})

# Bazarr's look-ups put every id in the query string: keep URLs well under common limits.
DEFAULT_BATCH = 50
DEFAULT_PAGE = 250
# The longest wanted list we read (a guard against a list that never ends).
MAX_WANTED = 100_000
# Ordinary calls (lists, look-ups) should answer within this, whatever BAZARR_TIMEOUT_SECONDS says.
QUICK_SECONDS = 60.0
CONNECT_SECONDS = 10.0


class BazarrError(Exception):
    """A call to Bazarr failed; the message says what to check. `retry=False`: trying again cannot help."""

    def __init__(self, message: str, *, status: int | None = None, retry: bool = True) -> None:
        super().__init__(message)
        self.status = status
        self.retry = retry


class BazarrConfigError(BazarrError):
    """BAZARR_URL or BAZARR_API_KEY is wrong: nothing works until the user fixes it."""

    def __init__(self, message: str, *, status: int | None = None) -> None:
        super().__init__(message, status=status, retry=False)


@dataclass(frozen=True)
class WantedLanguage:
    """One entry of an item's `missing_subtitles`."""

    code2: str  # Bazarr's code: ISO 639-1, or one of its own (pb, zt, ea)
    name: str
    forced: bool = False
    hi: bool = False


@dataclass(frozen=True)
class WantedItem:
    kind: Kind
    item_id: int  # sonarrEpisodeId or radarrId
    series_id: int | None  # sonarrSeriesId for episodes
    title: str
    languages: tuple[WantedLanguage, ...]


@dataclass(frozen=True)
class MediaItem:
    """An episode or movie as Bazarr knows it; `path` is as Bazarr sees it (map it before use)."""

    kind: Kind
    item_id: int
    series_id: int | None
    path: str | None
    audio_languages: tuple[str, ...]  # Bazarr's code2 (else code3) of each audio language it knows
    missing: tuple[WantedLanguage, ...] = ()  # its `missing_subtitles`: what Bazarr still wants


class BazarrClient:
    def __init__(
        self,
        url: str,
        api_key: str,
        *,
        timeout: float = 300.0,
        page_size: int = DEFAULT_PAGE,
        batch_size: int = DEFAULT_BATCH,
    ) -> None:
        self.base = url.rstrip("/")
        self._key = api_key
        self.page_size = page_size
        self.batch_size = batch_size
        self.quick = aiohttp.ClientTimeout(
            total=min(QUICK_SECONDS, timeout), sock_connect=min(CONNECT_SECONDS, timeout)
        )
        self.slow = aiohttp.ClientTimeout(total=timeout, sock_connect=min(CONNECT_SECONDS, timeout))
        self._session: aiohttp.ClientSession | None = None

    async def __aenter__(self) -> BazarrClient:
        self._session = aiohttp.ClientSession(
            timeout=self.quick,
            headers={
                "X-API-KEY": self._key,
                "User-Agent": f"Transcriptarr/{__version__}",
                "Accept": "application/json",
            },
        )
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    # --- connection ---
    async def ping(self) -> None:
        """Bazarr answers here without a key: proves BAZARR_URL (with its URL base) is right."""
        try:
            body = await self._json("GET", "/api/system/ping", what="the ping")
        except BazarrError as exc:
            if exc.status != 404:
                raise
            raise BazarrConfigError(
                f"no Bazarr API at {self.base}/api (HTTP 404); check BAZARR_URL", status=404
            ) from None
        if not isinstance(body, dict) or body.get("status") != "OK":
            raise BazarrConfigError(f"{self.base}/api/system/ping did not answer like Bazarr; check BAZARR_URL")

    async def status(self) -> str:
        """Bazarr's version; needs the key."""
        body = await self._json("GET", "/api/system/status", what="the status")
        data = body.get("data", body) if isinstance(body, dict) else {}
        return str(data.get("bazarr_version") or "unknown") if isinstance(data, dict) else "unknown"

    async def check(self) -> str:
        """The URL first, then the key, so that each mistake gets its own message; returns the version."""
        await self.ping()
        return await self.status()

    # --- wanted lists ---
    async def wanted_episodes(self) -> list[WantedItem]:
        return [_wanted("episode", row) for row in await self._all_pages("/api/episodes/wanted", "wanted episodes")]

    async def wanted_movies(self) -> list[WantedItem]:
        return [_wanted("movie", row) for row in await self._all_pages("/api/movies/wanted", "wanted movies")]

    async def _all_pages(self, path: str, what: str) -> list[dict[str, Any]]:
        """Every row, page by page, each id once (the list may shift while we read it)."""
        rows: dict[Any, dict[str, Any]] = {}
        start = 0
        while start < MAX_WANTED:
            params = [("start", str(start)), ("length", str(self.page_size))]
            body = await self._json("GET", path, params=params, what=what)
            page = _rows(body, what)
            for row in page:
                rows.setdefault(row.get("sonarrEpisodeId", row.get("radarrId")), row)
            total = body.get("total") if isinstance(body, dict) else None
            start += self.page_size
            if len(page) < self.page_size or (isinstance(total, int) and start >= total):
                break
        return list(rows.values())

    # --- look-ups ---
    async def episodes(self, episode_ids: Iterable[int]) -> list[MediaItem]:
        return await self._look_up("episode", "/api/episodes", "episodeid[]", episode_ids)

    async def movies(self, radarr_ids: Iterable[int]) -> list[MediaItem]:
        return await self._look_up("movie", "/api/movies", "radarrid[]", radarr_ids)

    async def _look_up(self, kind: Kind, path: str, name: str, ids: Iterable[int]) -> list[MediaItem]:
        wanted = list(dict.fromkeys(ids))
        found: list[MediaItem] = []
        for first in range(0, len(wanted), self.batch_size):
            batch = wanted[first : first + self.batch_size]
            body = await self._json(
                "GET", path, params=[(name, str(i)) for i in batch], what=f"the look-up of {len(batch)} {kind}s"
            )
            asked = set(batch)
            # Only what we asked for: a filter Bazarr ignored would otherwise return the whole library.
            items = [_media(kind, row) for row in _rows(body, kind)]
            found += [item for item in items if item.item_id in asked]
        return found

    # --- telling Bazarr about a new subtitle ---
    async def scan_disk(self, kind: Kind, item_id: int) -> None:
        """Rescan the series (`item_id` = sonarrSeriesId) or movie (radarrId) for subtitle files."""
        path, name = ("/api/series", "seriesid") if kind == "episode" else ("/api/movies", "radarrid")
        params = [(name, str(item_id)), ("action", "scan-disk")]
        await self._call("PATCH", path, params=params, what=f"the disk scan of {name} {item_id}", limit=self.slow)

    async def upload(
        self,
        kind: Kind,
        *,
        item_id: int,
        series_id: int | None,
        language: str,
        subtitle: Path,
        forced: bool = False,
        hi: bool = False,
    ) -> None:
        """Hand a subtitle file to Bazarr, which saves it next to the video under its own name."""
        content = await asyncio.to_thread(subtitle.read_bytes)
        form = aiohttp.FormData(quote_fields=False)  # Bazarr (werkzeug) would keep %20 in a quoted file name
        if kind == "episode":
            if series_id is None:
                raise BazarrError(f"cannot upload {subtitle} for episode {item_id}: its series id is unknown")
            form.add_field("seriesid", str(series_id))
            form.add_field("episodeid", str(item_id))
            path = "/api/episodes/subtitles"
        else:
            form.add_field("radarrid", str(item_id))
            path = "/api/movies/subtitles"
        form.add_field("language", language)
        form.add_field("forced", _flag(forced))
        form.add_field("hi", _flag(hi))
        form.add_field("file", content, filename=_upload_name(subtitle), content_type="text/plain")
        await self._call("POST", path, data=form, what=f"the upload of {subtitle.name}", limit=self.slow)

    # --- HTTP ---
    async def _json(self, method: str, path: str, *, what: str, params: Sequence[tuple[str, str]] = ()) -> Any:
        return await self._call(method, path, params=params, what=what, limit=self.quick, read=True)

    async def _call(
        self,
        method: str,
        path: str,
        *,
        what: str,
        limit: aiohttp.ClientTimeout,
        params: Sequence[tuple[str, str]] = (),
        data: aiohttp.FormData | None = None,
        read: bool = False,
    ) -> Any:
        if self._session is None:
            raise RuntimeError("use BazarrClient as `async with BazarrClient(...) as bazarr:`")
        url = self.base + path
        try:
            async with self._session.request(
                method, url, params=list(params), data=data, timeout=limit, allow_redirects=False
            ) as response:
                await self._raise_for(response, what)
                if not read:
                    return None
                if response.content_type != "application/json":
                    raise BazarrConfigError(
                        f"{url} answered with {response.content_type or 'no content type'}, not Bazarr's JSON; "
                        "check BAZARR_URL (it must point at Bazarr, with its URL base)"
                    )
                return await response.json()
        except TimeoutError:
            raise BazarrError(
                f"Bazarr at {self.base} did not finish {what} within {limit.total:g} s "
                "(BAZARR_TIMEOUT_SECONDS); is it busy or unreachable?"
            ) from None
        except aiohttp.ContentTypeError as exc:
            raise BazarrError(f"Bazarr sent invalid JSON for {what}: {exc.message}") from None
        except aiohttp.ClientError as exc:
            raise BazarrError(
                f"cannot reach Bazarr at {self.base} for {what} ({exc or type(exc).__name__}); "
                "check BAZARR_URL and that Bazarr is running"
            ) from None

    async def _raise_for(self, response: aiohttp.ClientResponse, what: str) -> None:
        status = response.status
        if 300 <= status < 400:
            target = response.headers.get("Location", "?")
            raise BazarrConfigError(
                f"Bazarr at {self.base} answered {what} with a redirect to {target}: BAZARR_URL must include "
                "Bazarr's URL base (Bazarr: Settings > General > URL Base), e.g. http://bazarr:6767/bazarr",
                status=status,
            )
        if status == 401:
            raise BazarrConfigError(
                f"Bazarr at {self.base} refused the API key (HTTP 401) for {what}: check BAZARR_API_KEY "
                "(Bazarr: Settings > General > Security > API Key)",
                status=status,
            )
        if status < 300:
            return
        text = " ".join((await response.text(errors="replace"))[:200].split())
        hint = _HINTS.get(status, "")
        raise BazarrError(
            f"Bazarr answered {what} with HTTP {status}{hint}: {text or response.reason}",
            status=status,
            retry=status >= 500 or status == 429,
        )


_HINTS = {
    404: " (unknown item: was it removed from Bazarr?)",
    409: " (Bazarr cannot save the file: a permission or path mapping problem on Bazarr's side)",
    500: " (on uploads: Bazarr cannot find the video; check Bazarr's own path mappings)",
}


def _upload_name(subtitle: Path) -> str:
    """Bazarr reads only the extension (and shows the name in its task list): plain ASCII, or a neutral name."""
    name = subtitle.name
    plain = name.isascii() and name.isprintable() and not any(c in name for c in '"\\')
    return name if plain else f"subtitle{subtitle.suffix.lower()}"


def _flag(value: bool) -> str:
    return "true" if value else "false"


def _rows(body: Any, what: str) -> list[dict[str, Any]]:
    data = body.get("data") if isinstance(body, dict) else None
    if not isinstance(data, list):
        raise BazarrError(f"Bazarr's answer for {what} has no 'data' list; is BAZARR_URL really Bazarr?")
    return [row for row in data if isinstance(row, dict)]


def _truth(value: Any) -> bool:
    return value is True or (isinstance(value, str) and value.lower() == "true")


def _int(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def _missing(row: dict[str, Any]) -> tuple[WantedLanguage, ...]:
    languages = []
    for entry in row.get("missing_subtitles") or []:
        if not isinstance(entry, dict):
            continue
        code = entry.get("code2") or entry.get("code3")
        if code:
            name = str(entry.get("name") or code)
            languages.append(
                WantedLanguage(str(code).lower(), name, _truth(entry.get("forced")), _truth(entry.get("hi")))
            )
    return tuple(languages)


def _wanted(kind: Kind, row: dict[str, Any]) -> WantedItem:
    if kind == "episode":
        title = f"{row.get('seriesTitle', '?')} {row.get('episode_number', '')} {row.get('episodeTitle', '')}".strip()
        item_id, series_id = _int(row.get("sonarrEpisodeId")), _int(row.get("sonarrSeriesId"))
    else:
        title, item_id, series_id = str(row.get("title", "?")), _int(row.get("radarrId")), None
    if item_id is None:
        raise BazarrError(f"a wanted {kind} from Bazarr has no id: {str(row)[:200]}")
    return WantedItem(kind, item_id, series_id, title, _missing(row))


def _media(kind: Kind, row: dict[str, Any]) -> MediaItem:
    audio = []
    for entry in row.get("audio_language") or []:
        if isinstance(entry, dict) and (entry.get("code2") or entry.get("code3")):
            audio.append(str(entry.get("code2") or entry.get("code3")).lower())
    item_id = _int(row.get("sonarrEpisodeId") if kind == "episode" else row.get("radarrId"))
    path = row.get("path")
    return MediaItem(
        kind,
        item_id if item_id is not None else -1,
        _int(row.get("sonarrSeriesId")),
        str(path) if path else None,
        tuple(audio),
        _missing(row),
    )
