"""A small fake of Bazarr's REST API on 127.0.0.1 that is as strict as the real one (Bazarr 1.5.x).

Rules it enforces, from BAZARR_CONTRACT.md and Bazarr's API code:
- the API lives under the URL base; any other path is redirected to the web UI (`302`), not a 404;
- `X-API-KEY` header (or `apikey` in the query or form) else `401`; `/api/system/ping` needs no key;
- array parameters are named literally `episodeid[]`, `seriesid[]`, `radarrid[]`: a plain `radarrid=5`
  is silently ignored (so `/api/movies?radarrid=5` lists every movie);
- paging (`start`, `length`) only applies when `length > 0`; lists answer `{"data": [...], "total": N}`;
- the `episodeid[]` filter of the wanted episodes never matches (Bazarr's bug);
- `/api/episodes` without ids is a `404`;
- scan-disk answers `204`, also for unknown ids; uploads answer `204`, `404` for an unknown item, `400`
  when a form field is missing, `500` for a file name without a subtitle extension.

Every request is recorded in `calls`, uploads also in `uploads`.

    async with FakeBazarr(url_base="/bazarr") as bazarr:
        bazarr.add_episode(1, 10, "/tv/Show/S01E01.mkv", audio=["en"], missing=[lang("en")])
        ... BazarrClient(bazarr.url, bazarr.api_key) ...
"""

from __future__ import annotations

from dataclasses import dataclass, field
from types import TracebackType
from typing import Any

from aiohttp import web

# code2 -> (name, code3), as Bazarr writes them.
_LANGUAGES = {
    "en": ("English", "eng"),
    "de": ("German", "ger"),
    "fr": ("French", "fre"),
    "ja": ("Japanese", "jpn"),
    "es": ("Spanish", "spa"),
    "pt": ("Portuguese", "por"),
    "pb": ("Portuguese (Brazil)", "pob"),
    "zh": ("Chinese Simplified", "chi"),
    "zt": ("Chinese Traditional", "zht"),
    "ea": ("Spanish (Latino)", "spl"),
}
_SUBTITLE_EXTENSIONS = (".srt", ".ass", ".ssa", ".vtt", ".sub", ".smi", ".txt", ".mpl")


def lang(code2: str, *, forced: bool = False, hi: bool = False) -> dict[str, Any]:
    """A `missing_subtitles` entry as Bazarr's API shows it."""
    name, code3 = _LANGUAGES[code2]
    return {"name": name, "code2": code2, "code3": code3, "forced": forced, "hi": hi}


def audio(code2: str) -> dict[str, Any]:
    """An `audio_language` entry."""
    name, code3 = _LANGUAGES[code2]
    return {"name": name, "code2": code2, "code3": code3}


@dataclass
class Episode:
    series_id: int
    episode_id: int
    path: str
    audio: list[str]
    missing: list[dict[str, Any]]
    series_title: str = "Show"
    number: str = "1x1"
    title: str = "Pilot"


@dataclass
class Movie:
    radarr_id: int
    path: str
    audio: list[str]
    missing: list[dict[str, Any]]
    title: str = "Movie"


@dataclass
class Call:
    method: str
    path: str  # below the URL base, e.g. /api/movies
    query: list[tuple[str, str]]
    form: dict[str, str] = field(default_factory=dict)
    authorised: bool = False


@dataclass
class Upload:
    kind: str
    form: dict[str, str]
    filename: str
    content: bytes


class FakeBazarr:
    def __init__(self, *, api_key: str = "fake-bazarr-key", url_base: str = "", version: str = "1.5.1") -> None:
        self.api_key = api_key
        self.url_base = url_base.rstrip("/")
        self.version = version
        self.episodes: dict[int, Episode] = {}
        self.movies: dict[int, Movie] = {}
        self.calls: list[Call] = []
        self.uploads: list[Upload] = []
        self.port = 0
        self._runner: web.AppRunner | None = None

    # --- data ---
    def add_episode(
        self,
        series_id: int,
        episode_id: int,
        path: str,
        *,
        audio: list[str],
        missing: list[dict[str, Any]],
        **more: Any,
    ) -> Episode:
        episode = Episode(series_id, episode_id, path, audio, missing, **more)
        self.episodes[episode_id] = episode
        return episode

    def add_movie(
        self, radarr_id: int, path: str, *, audio: list[str], missing: list[dict[str, Any]], **more: Any
    ) -> Movie:
        movie = Movie(radarr_id, path, audio, missing, **more)
        self.movies[radarr_id] = movie
        return movie

    # --- server ---
    @property
    def root(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def url(self) -> str:
        """What BAZARR_URL should be: the root with the URL base."""
        return self.root + self.url_base

    async def __aenter__(self) -> FakeBazarr:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._dispatch)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = self._runner.addresses[0][1]
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    def calls_to(self, method: str, path: str) -> list[Call]:
        return [call for call in self.calls if call.method == method and call.path == path]

    # --- requests ---
    async def _dispatch(self, request: web.Request) -> web.StreamResponse:
        path = request.path
        if self.url_base and not (path == self.url_base or path.startswith(self.url_base + "/")):
            raise web.HTTPFound(self.url_base + "/")  # Bazarr sends strangers to its web UI
        path = path[len(self.url_base) :]
        form: dict[str, str] = {}
        files: dict[str, web.FileField] = {}
        if request.method == "POST":
            for name, value in (await request.post()).items():
                if isinstance(value, web.FileField):
                    files[name] = value
                else:
                    form[name] = str(value)
        keys = {request.headers.get("X-API-KEY"), request.query.get("apikey"), form.get("apikey")}
        call = Call(request.method, path, list(request.query.items()), form, self.api_key in keys)
        self.calls.append(call)
        if (request.method, path) == ("GET", "/api/system/ping"):
            return web.json_response({"status": "OK"})
        if not call.authorised:
            return web.Response(status=401, text="Unauthorized")
        route = {
            ("GET", "/api/system/status"): self._status,
            ("GET", "/api/episodes/wanted"): self._wanted_episodes,
            ("GET", "/api/movies/wanted"): self._wanted_movies,
            ("GET", "/api/episodes"): self._episodes,
            ("GET", "/api/movies"): self._movies,
            ("PATCH", "/api/series"): self._scan_series,
            ("PATCH", "/api/movies"): self._scan_movie,
        }.get((request.method, path))
        if route is not None:
            return route(request)
        if (request.method, path) == ("POST", "/api/episodes/subtitles"):
            return self._upload("episode", request, form, files)
        if (request.method, path) == ("POST", "/api/movies/subtitles"):
            return self._upload("movie", request, form, files)
        return web.json_response({"message": "not found"}, status=404)

    def _status(self, request: web.Request) -> web.Response:
        return web.json_response({"data": {"bazarr_version": self.version, "package_version": ""}})

    def _wanted_episodes(self, request: web.Request) -> web.Response:
        wanted = sorted((e for e in self.episodes.values() if e.missing), key=lambda e: -e.episode_id)
        if request.query.getall("episodeid[]", []):
            return web.json_response({"data": [], "total": len(wanted)})  # Bazarr's bug: never matches
        rows = [
            {
                "seriesTitle": e.series_title,
                "episode_number": e.number,
                "episodeTitle": e.title,
                "missing_subtitles": e.missing,
                "sonarrSeriesId": e.series_id,
                "sonarrEpisodeId": e.episode_id,
                "sceneName": None,
                "tags": [],
                "seriesType": "standard",
            }
            for e in wanted
        ]
        return web.json_response({"data": _page(request, rows), "total": len(rows)})

    def _wanted_movies(self, request: web.Request) -> web.Response:
        wanted = sorted((m for m in self.movies.values() if m.missing), key=lambda m: -m.radarr_id)
        ids = _ids(request, "radarrid[]")
        if ids:
            wanted = [m for m in wanted if m.radarr_id in ids]
        rows = [
            {"title": m.title, "missing_subtitles": m.missing, "radarrId": m.radarr_id, "sceneName": None, "tags": []}
            for m in wanted
        ]
        return web.json_response({"data": _page(request, rows), "total": len(rows)})

    def _episodes(self, request: web.Request) -> web.Response:
        episode_ids, series_ids = _ids(request, "episodeid[]"), _ids(request, "seriesid[]")
        if episode_ids:
            found = [e for e in self.episodes.values() if e.episode_id in episode_ids]
        elif series_ids:
            found = [e for e in self.episodes.values() if e.series_id in series_ids]
        else:
            return web.json_response("Series or Episode ID not provided", status=404)
        rows = [
            {
                "audio_language": [audio(code) for code in e.audio],
                "episode": 1,
                "missing_subtitles": e.missing,
                "monitored": True,
                "path": e.path,
                "season": 1,
                "sonarrEpisodeId": e.episode_id,
                "sonarrSeriesId": e.series_id,
                "subtitles": [],
                "title": e.title,
                "sceneName": None,
            }
            for e in found
        ]
        return web.json_response({"data": rows})

    def _movies(self, request: web.Request) -> web.Response:
        ids = _ids(request, "radarrid[]")  # a plain `radarrid` is not read at all
        movies = sorted(self.movies.values(), key=lambda m: m.title)
        chosen = [m for m in movies if m.radarr_id in ids] if ids else movies
        rows = [
            {
                "audio_language": [audio(code) for code in m.audio],
                "missing_subtitles": m.missing,
                "monitored": True,
                "path": m.path,
                "radarrId": m.radarr_id,
                "sceneName": None,
                "subtitles": [],
                "tags": [],
                "title": m.title,
            }
            for m in chosen
        ]
        return web.json_response({"data": _page(request, rows), "total": len(self.movies)})

    def _scan_series(self, request: web.Request) -> web.Response:
        _int_arg(request, "seriesid")
        return _action(request)

    def _scan_movie(self, request: web.Request) -> web.Response:
        _int_arg(request, "radarrid")
        return _action(request)

    def _upload(
        self, kind: str, request: web.Request, form: dict[str, str], files: dict[str, web.FileField]
    ) -> web.Response:
        names = ("seriesid", "episodeid") if kind == "episode" else ("radarrid",)
        values = {**dict(request.query), **form}  # reqparse reads query and form alike
        for name in (*names, "language", "forced", "hi"):
            if name not in values:
                return web.json_response({"message": {name: "Missing required parameter"}}, status=400)
        upload = files.get("file")
        if upload is None:
            return web.json_response({"message": {"file": "Missing required parameter"}}, status=400)
        if not upload.filename.lower().endswith(_SUBTITLE_EXTENSIONS):
            return web.json_response({"message": "A subtitle of an invalid format was uploaded."}, status=500)
        known = (
            int(values["episodeid"]) in self.episodes if kind == "episode" else int(values["radarrid"]) in self.movies
        )
        if not known:
            return web.Response(status=404, text=f"{kind.capitalize()} not found")
        self.uploads.append(
            Upload(
                kind, {k: values[k] for k in (*names, "language", "forced", "hi")}, upload.filename, upload.file.read()
            )
        )
        return web.Response(status=204)


def _ids(request: web.Request, name: str) -> set[int]:
    try:
        return {int(value) for value in request.query.getall(name, [])}
    except ValueError:
        raise web.HTTPBadRequest(text=f"{name} must be integers") from None


def _int_arg(request: web.Request, name: str) -> int | None:
    value = request.query.get(name)
    if value is None:
        return None
    try:
        return int(value)
    except ValueError:
        raise web.HTTPBadRequest(text=f"{name} must be an integer") from None


def _action(request: web.Request) -> web.Response:
    if request.query.get("action") in ("scan-disk", "search-missing", "search-wanted", "sync"):
        return web.Response(status=204)  # unknown ids too
    return web.json_response("Unknown action", status=400)


def _page(request: web.Request, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    try:
        start = int(request.query.get("start") or 0)
        length = int(request.query.get("length") or -1)
    except ValueError:
        raise web.HTTPBadRequest(text="start and length must be integers") from None
    return rows[start : start + length] if length > 0 else rows
