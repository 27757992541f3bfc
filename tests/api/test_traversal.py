"""Path traversal: no client-supplied path makes the service queue, read or write a file outside LIBRARY_PATHS.

Every route that takes a path is tried with `..`, absolute paths elsewhere,
symlinks out of the library, URL-encoded and double-encoded dots, backslashes,
NUL bytes, `~` and overlong paths:

* POST /api/jobs queues a library file: each hostile path is refused with a 4xx
  and a reason, and nothing is queued.
* `video_file` on /asr and /detect-language is Bazarr's own name for the video
  (it may differ from ours, or be a Windows path), so it is not a reason to
  refuse an upload: it is only used to find a subtitle we wrote inside the
  library. A hostile one is never followed: the upload is transcribed as sent,
  nothing outside is read, no job names a media file.
* The webhook routes (`/webhooks/{jellyfin,emby,plex,tautulli}`), with the path
  in the event or named by the media server's API, and through PATH_MAPPINGS:
  refused with a 4xx, nothing queued.

Each test compares the temp tree before and after: only the spool and the
database may change.
"""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.acceptance.engine_harness import engine_settings
from tests.api.live import BAZARR_HEADERS, LiveService
from tests.api.test_bazarr import parses_as_srt
from tests.integrations.fake_mediaserver import TOKEN, FakeItem, FakeMediaServer
from tests.integrations.test_webhooks import (
    emby_event,
    jellyfin_all_properties,
    jellyfin_template,
    plex_event,
    plex_multipart,
    tautulli_body,
)
from transcriptarr.db.models import Job
from transcriptarr.service import Components

KEY = "traversal-key"
AUTH = {"X-Api-Key": KEY}
SECRET = "Secret words from outside the library."
SILENCE = b"\x00\x00" * 1600  # 0.1 s of PCM

# A path template per kind of attack; {lib} and {out} are the library and a folder beside it.
HOSTILE: dict[str, str] = {
    "dot-dot": "{lib}/../outside/secret.mkv",
    "dot-dot-deep": "{lib}/Show/../../outside/secret.mkv",
    "dot-dot-to-root": "{lib}/" + "../" * 40 + "etc/passwd",
    "absolute-outside": "{out}/secret.mkv",
    "etc-passwd": "/etc/passwd",
    "double-slash-root": "//etc/passwd",
    "relative": "outside/secret.mkv",
    "relative-dot-dot": "../outside/secret.mkv",
    "symlink-file-out": "{lib}/escape.mkv",
    "symlink-dir-out": "{lib}/escape_dir/secret.mkv",
    "symlink-loop": "{lib}/loop.mkv",
    "url-encoded": "{lib}/%2e%2e%2foutside%2fsecret.mkv",
    "url-encoded-dots": "{lib}/%2e%2e/outside/secret.mkv",
    "double-encoded": "{lib}/..%252foutside%252fsecret.mkv",
    "backslashes": "{lib}\\..\\outside\\secret.mkv",
    "mixed-slashes": "{lib}/..\\outside/secret.mkv",
    "windows-drive": "C:\\Windows\\win.ini",
    "nul-byte": "{lib}/film.mkv\x00/../../outside/secret.mkv",
    "nul-suffix": "{out}/secret.mkv\x00.mkv",
    "home": "~/.ssh/id_rsa",
    "unknown-user-home": "~nosuchuser_transcriptarr/x.mkv",
    "file-url": "file:///etc/passwd",
    "fullwidth-dots": "{lib}/\uff0e\uff0e/outside/secret.mkv",
    "newline": "{lib}/film.mkv\n/../../outside/secret.mkv",
    "long-name": "{lib}/" + "x" * 300 + ".mkv",
    "long-path": "{lib}/" + "d/" * 2100 + "film.mkv",
    "long-dot-dots": "{lib}/" + "a/../" * 900 + "../outside/secret.mkv",
}
# Refused by POST /api/jobs with this status and these words in the reason.
EXPECTED_REFUSAL: dict[str, tuple[int, str]] = {
    "relative": (403, "absolute"),
    "relative-dot-dot": (403, "absolute"),
    "windows-drive": (403, "absolute"),
    "file-url": (403, "absolute"),
    "nul-byte": (403, "NUL"),
    "nul-suffix": (403, "NUL"),
    "symlink-loop": (400, "cannot resolve"),
    "unknown-user-home": (400, "cannot resolve"),
    "url-encoded": (404, "does not exist"),
    "url-encoded-dots": (404, "does not exist"),
    "double-encoded": (404, "does not exist"),
    "mixed-slashes": (404, "does not exist"),
    "fullwidth-dots": (404, "does not exist"),
    "long-name": (404, "does not exist"),
    "long-path": (404, "does not exist"),
}
DEFAULT_REFUSAL = (403, "not inside LIBRARY_PATHS")
# Too long for a request line (aiohttp's limit, 8190 bytes) once URL-encoded: refused before any handler.
TOO_LONG_FOR_A_URL = frozenset({"long-path", "long-dot-dots"})


def hostile(name: str, folders: dict[str, Path]) -> str:
    return HOSTILE[name].format(lib=folders["library"], out=folders["outside"])


# --------------------------------------------------------------------------- what changed on disk


def snapshot_tree(root: Path) -> dict[str, tuple[int, int]]:
    """Every path under `root` (symlinks not followed) with its size and mtime."""
    seen: dict[str, tuple[int, int]] = {}
    for folder, dirs, files in os.walk(root):
        for name in dirs + files:
            path = os.path.join(folder, name)
            info = os.lstat(path)
            seen[path] = (info.st_size, info.st_mtime_ns if not os.path.isdir(path) else 0)
    return seen


def changed_outside(
    before: dict[str, tuple[int, int]], after: dict[str, tuple[int, int]], allowed: list[Path]
) -> list[str]:
    """Paths created, changed or removed that lie in none of the `allowed` folders or files."""
    changed = {path for path in before.keys() | after.keys() if before.get(path) != after.get(path)}
    return sorted(path for path in changed if not any(Path(path).is_relative_to(place) for place in allowed))


def allowed_changes(root: Path, spool: Path) -> list[Path]:
    """The spool, and the SQLite database with its journal files."""
    return [spool, *(root / f"engine.db{suffix}" for suffix in ("", "-wal", "-shm", "-journal"))]


# --------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def folders(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("traversal")
    library, outside = root / "library", root / "outside"
    (library / "Show").mkdir(parents=True)
    outside.mkdir()
    (library / "film.mkv").write_bytes(b"media")
    (library / "Show" / "S01E01.mkv").write_bytes(b"media")
    (outside / "secret.mkv").write_bytes(b"not yours")
    (outside / "secret.en.srt").write_text(f"1\n00:00:01,000 --> 00:00:02,000\n{SECRET}\n\n", encoding="utf-8")
    (library / "escape.mkv").symlink_to(outside / "secret.mkv")
    (library / "escape_dir").symlink_to(outside, target_is_directory=True)
    (library / "loop.mkv").symlink_to(library / "loop.mkv")
    return {"root": root, "library": library, "outside": outside}


@pytest.fixture(scope="module")
def fakes() -> Iterator[dict[str, FakeMediaServer]]:
    with FakeMediaServer("jellyfin") as jellyfin, FakeMediaServer("plex") as plex:
        yield {"jellyfin": jellyfin, "plex": plex}


@pytest.fixture(scope="module")
def service(folders: dict[str, Path], fakes: dict[str, FakeMediaServer]) -> Iterator[LiveService]:
    """No workers: what is queued stays queued. The outside subtitle is on record, as if we had written it,
    so a look-up that followed a hostile `video_file` would answer with its text."""
    library = folders["library"]
    settings = engine_settings(
        folders["root"],
        transcriptarr_mode="standalone,provider",
        api_key=KEY,
        library_paths=str(library),
        library_follow_symlinks=False,  # with true, a symlink the user put in the library is followed, as by the scan
        library_min_duration_seconds=0,
        path_mappings=f"/data/movies:{library}|D:\\Media:{library}",
        jellyfin_url=fakes["jellyfin"].url,
        jellyfin_api_key=TOKEN,
        plex_url=fakes["plex"].url,
        plex_token=TOKEN,
    )
    with LiveService(
        settings,
        workers=False,
        max_wait_seconds=0.3,
        keepalive_seconds=0.1,
        snapshot_ttl_seconds=0,
        path_prefix="/whisper",
    ) as live:
        outside = folders["outside"]

        async def on_record(parts: Components) -> None:
            for media in (outside / "secret.mkv", folders["library"] / "escape.mkv"):
                await parts.subtitles.record(
                    outside / "secret.en.srt", media_path=str(media), language="en", job_id=None
                )

        live.call(on_record)
        yield live


def all_jobs(service: LiveService) -> list[Job]:
    return service.call(lambda parts: parts.queue.list_jobs(limit=500))


class Unchanged:
    """Asserts on exit that nothing outside the spool and the database changed."""

    def __init__(self, service: LiveService, folders: dict[str, Path]) -> None:
        self.root = folders["root"]
        self.allowed = allowed_changes(self.root, service.config.spool_dir)

    def __enter__(self) -> Unchanged:
        self.before = snapshot_tree(self.root)
        return self

    def __exit__(self, *exc: object) -> None:
        assert changed_outside(self.before, snapshot_tree(self.root), self.allowed) == []


# --------------------------------------------------------------------------- POST /api/jobs


@pytest.mark.parametrize("name", list(HOSTILE))
def test_enqueue_refuses_hostile_paths_and_queues_nothing(
    service: LiveService, folders: dict[str, Path], name: str
) -> None:
    jobs_before = len(all_jobs(service))
    with Unchanged(service, folders):
        response = requests.post(
            f"{service.url}/api/jobs", json={"path": hostile(name, folders), "language": "en"}, headers=AUTH, timeout=30
        )
    status, words = EXPECTED_REFUSAL.get(name, DEFAULT_REFUSAL)
    assert response.status_code == status, response.text
    assert words in response.json()["error"], response.text
    assert len(all_jobs(service)) == jobs_before


def test_enqueue_accepts_a_library_file_spelled_with_harmless_dots(
    service: LiveService, folders: dict[str, Path]
) -> None:
    """The refusals above are about where a path leads, not how it is spelled."""
    spelled = f"{folders['library']}/Show/./../Show/S01E01.mkv"
    response = requests.post(
        f"{service.url}/api/jobs", json={"path": spelled, "language": "de"}, headers=AUTH, timeout=30
    )
    assert response.status_code in (200, 201), response.text
    assert response.json()["jobs"][0]["job"]["media_path"] == str(folders["library"] / "Show" / "S01E01.mkv")


# --------------------------------------------------------------------------- video_file on the provider routes


def _provider_jobs_name_no_media(service: LiveService) -> None:
    for job in all_jobs(service):
        if job.source == "bazarr":
            assert job.media_path is None
            assert Path(str(job.upload_path)).parent == service.config.spool_dir


@pytest.mark.parametrize("name", list(HOSTILE))
def test_asr_never_follows_a_hostile_video_file(service: LiveService, folders: dict[str, Path], name: str) -> None:
    audio = SILENCE + name.encode()  # another upload per case: never answered from an earlier one
    audio += b"\x00" * (len(audio) % 2)
    params = {"task": "transcribe", "language": "en", "output": "srt", "encode": "false"}
    with Unchanged(service, folders):
        response = requests.post(
            f"{service.url}/asr",
            params={**params, "video_file": hostile(name, folders)},
            files={"audio_file": audio},
            headers=BAZARR_HEADERS,
            timeout=30,
        )
    assert SECRET not in response.text
    assert response.text.strip() and not parses_as_srt(response.text)
    if name in TOO_LONG_FOR_A_URL:
        assert response.status_code == 400 and "8190 bytes" in response.text
    else:
        # Transcribed as sent: with no workers, the request waits its (short) maximum and says so.
        assert response.status_code == 504 and response.text.startswith("ERROR: "), response.text
    _provider_jobs_name_no_media(service)


@pytest.mark.parametrize(
    "raw",
    [
        "{lib}/..%2f..%2foutside%2fsecret.mkv",  # decoded once by the server: {lib}/../../outside/...
        "{lib}/..%252foutside%252fsecret.mkv",  # decoded once: a literal %2f stays
        "{lib}%2F..%2F..%2Foutside%2Fsecret.mkv",
        "%2e%2e%2f%2e%2e%2fetc%2fpasswd",
        "{lib}/film.mkv%00/../../outside/secret.mkv",
        "{out}/secret.mkv",
    ],
)
def test_asr_never_follows_a_hostile_video_file_encoded_in_the_url(
    service: LiveService, folders: dict[str, Path], raw: str
) -> None:
    """The query string exactly as written (requests would encode the % signs again)."""
    video = raw.format(lib=folders["library"], out=folders["outside"])
    audio = SILENCE + b"\x01\x00" * (len(raw) + 100)
    url = f"{service.url}/asr?task=transcribe&language=en&output=srt&encode=false&video_file={video}"
    with Unchanged(service, folders):
        response = requests.post(url, files={"audio_file": audio}, headers=BAZARR_HEADERS, timeout=30)
    assert SECRET not in response.text
    assert response.status_code == 504, response.text
    assert not parses_as_srt(response.text)
    _provider_jobs_name_no_media(service)


def test_detect_language_ignores_hostile_video_files(service: LiveService, folders: dict[str, Path]) -> None:
    """An empty upload answers `{}` at once; the point is that no video_file is read or breaks the route."""
    with Unchanged(service, folders):
        for route in ("/detect-language", "/whisper/detect-language"):
            for name in HOSTILE.keys() - TOO_LONG_FOR_A_URL:
                response = requests.post(
                    f"{service.url}{route}",
                    params={"encode": "false", "video_file": hostile(name, folders)},
                    files={"audio_file": b""},
                    headers=BAZARR_HEADERS,
                    timeout=30,
                )
                assert response.status_code == 200, (route, name, response.text)
                assert response.json() == {}, (route, name)


# --------------------------------------------------------------------------- traversal in the URL path


def raw_get(service: LiveService, target: str, headers: str = "") -> tuple[int, bytes]:
    """One GET with the request target exactly as written; (status, body)."""
    with socket.create_connection(("127.0.0.1", service.port), timeout=30) as conn:
        conn.sendall(f"GET {target} HTTP/1.1\r\nHost: 127.0.0.1\r\n{headers}Connection: close\r\n\r\n".encode())
        answer = b""
        while chunk := conn.recv(65536):
            answer += chunk
    head, _, body = answer.partition(b"\r\n\r\n")
    return int(head.split(b" ", 2)[1]), body


@pytest.mark.parametrize(
    "target",
    [
        "/../../../../etc/passwd",
        "/%2e%2e/%2e%2e/%2e%2e/etc/passwd",
        "/..%2f..%2f..%2fetc%2fpasswd",
        "/..%252f..%252fetc%252fpasswd",
        "/whisper/../../../etc/passwd",
        "/static/..%5c..%5c..%5cetc%5cpasswd",
        "/api/jobs/..%2f..%2f..%2fetc%2fpasswd",
        "/api/jobs/1%2f..%2f..%2fetc%2fpasswd",
        "/" + "..%2f" * 200 + "etc/passwd",
    ],
)
def test_url_paths_that_climb_out_serve_no_file(service: LiveService, target: str) -> None:
    status, body = raw_get(service, target, headers=f"X-Api-Key: {KEY}\r\n")
    assert 400 <= status < 500, (status, body[:300])
    assert b"root:" not in body


@pytest.mark.parametrize(
    "target",
    [
        "/api/status",
        "//api/status",
        "/api//status",
        "/./api/status",
        "/api/./status",
        "/api/%2e/status",
        "/%61pi/status",
        "/whisper/../api/status",
        "/status/../api/status",
        "/api/status/",
        "/API/status",
        "/metrics",
        "/./metrics",
        "//metrics",
        "/metrics/",
        "/%6detrics",
        "/api/jobs",
        "/api/jobs/",
        "//api/jobs",
    ],
)
def test_odd_spellings_of_key_protected_routes_still_need_the_key(service: LiveService, target: str) -> None:
    """The key is checked on the path the router matches, however the client spelled it."""
    status, body = raw_get(service, target)
    assert status in (401, 404), (status, body[:300])


# --------------------------------------------------------------------------- webhooks

# As a media server in another container, or on Windows, names hostile files (PATH_MAPPINGS: see `service`).
MAPPED_HOSTILE = {
    "mapped-dot-dot": "/data/movies/../outside/secret.mkv",
    "mapped-deep-dot-dot": "/data/movies/Show/../../../../etc/passwd",
    "mapped-symlink-out": "/data/movies/escape.mkv",
    "mapped-symlink-dir-out": "/data/movies/escape_dir/secret.mkv",
    "mapped-windows-dot-dot": "D:\\Media\\..\\outside\\secret.mkv",
    "mapped-windows-mixed": "d:/media/..\\..\\etc/passwd",
    "mapped-encoded": "/data/movies/%2e%2e/outside/secret.mkv",
    "mapped-prefix-lookalike": "/data/movies_evil/../outside/secret.mkv",
    "mapped-nul": "/data/movies/film.mkv\x00/../../outside/secret.mkv",
}


def webhook_path(name: str, folders: dict[str, Path]) -> str:
    return MAPPED_HOSTILE[name] if name in MAPPED_HOSTILE else hostile(name, folders)


def webhook_requests(path: str) -> list[tuple[str, dict[str, Any]]]:
    """(route, requests keyword arguments) for every server whose event can carry the file's path."""
    item = uuid.uuid4().hex
    return [
        ("jellyfin", {"json": jellyfin_all_properties("ItemAdded", item, "Movie", "Film", path=path)}),
        ("jellyfin", {"json": jellyfin_all_properties("PlaybackStart", item, "Movie", "Film", path=path)}),
        ("emby", {"json": emby_event("library.new", {"Id": item, "Type": "Movie", "Name": "Film", "Path": path})}),
        ("tautulli", {"json": tautulli_body("created", "", "movie", "Film", file=path)}),
    ]


@pytest.mark.parametrize("name", [*HOSTILE, *MAPPED_HOSTILE])
def test_webhooks_refuse_hostile_paths_in_the_event_and_queue_nothing(
    service: LiveService, folders: dict[str, Path], name: str
) -> None:
    jobs_before = len(all_jobs(service))
    with Unchanged(service, folders):
        for route, body in webhook_requests(webhook_path(name, folders)):
            response = requests.post(f"{service.url}/webhooks/{route}", headers=AUTH, timeout=30, **body)
            assert response.status_code in (400, 403, 404), (route, response.text)
            assert response.json()["error"], (route, response.text)
    assert len(all_jobs(service)) == jobs_before


@pytest.mark.parametrize("name", [*HOSTILE, *MAPPED_HOSTILE])
def test_webhooks_refuse_hostile_paths_from_the_media_servers_api(
    service: LiveService, folders: dict[str, Path], fakes: dict[str, FakeMediaServer], name: str
) -> None:
    """Plex events never carry a path, Jellyfin's template may not: the server's API names the file."""
    path = webhook_path(name, folders)
    plex_key, jellyfin_id = str(uuid.uuid4().int % 10**9), uuid.uuid4().hex
    fakes["plex"].add(FakeItem(plex_key, "movie", "Film", path))
    fakes["jellyfin"].add(FakeItem(jellyfin_id, "Movie", "Film", path))
    jobs_before = len(all_jobs(service))
    plex = plex_event("library.new", {"ratingKey": plex_key, "type": "movie", "title": "Film"})
    with Unchanged(service, folders):
        events: list[tuple[str, dict[str, Any]]] = [
            ("plex", {"files": plex_multipart(plex)}),
            ("tautulli", {"json": tautulli_body("play", plex_key, "movie", "Film")}),
            ("jellyfin", {"json": jellyfin_template("ItemAdded", jellyfin_id, "Movie", "Film")}),
        ]
        for route, body in events:
            response = requests.post(f"{service.url}/webhooks/{route}", params={"apikey": KEY}, timeout=30, **body)
            assert response.status_code in (400, 403, 404), (route, response.text)
            assert response.json()["error"], (route, response.text)
    assert len(all_jobs(service)) == jobs_before
