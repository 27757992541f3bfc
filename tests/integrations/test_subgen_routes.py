"""SubGen's URLs (/plex, /jellyfin, /emby, /tautulli, /webhook, /batch) over real loopback HTTP.

Each request is sent the way SubGen's README sets the sender up (McCloudS/subgen):
Plex's multipart `payload` with Plex's User-Agent, Jellyfin's "Send All Properties"
with a Content-Type header, Emby's multipart `data`, Tautulli's JSON data with the
header `source: Tautulli`, and /batch as its FastAPI form calls it
(`?directory=...&forceLanguage=...`). They go through the same path mapping, library
confinement, API key and queue as /webhooks/{name}.
"""

from __future__ import annotations

import json
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.acceptance.engine_harness import engine_settings
from tests.api.live import LiveService
from tests.integrations.fake_mediaserver import TOKEN, FakeItem, FakeMediaServer
from tests.integrations.test_webhooks import emby_event, jellyfin_all_properties, plex_event, plex_multipart, wait_for
from transcriptarr.db.models import Job, JobState, Source
from transcriptarr.queue.keys import SOURCE_PRIORITY

KEY = "subgen-key"
PAYLOADS = Path(__file__).parent / "payloads"
TAUTULLI = {"source": "Tautulli"}  # SubGen's README: the webhook's JSON headers
PLEX_AGENT = {"User-Agent": "PlexMediaServer/1.41.3.9314-a0bfb8370"}
JELLYFIN = {"Content-Type": "application/json", "User-Agent": "Jellyfin-Server/10.10.3"}


@pytest.fixture(scope="module")
def fakes() -> Iterator[dict[str, FakeMediaServer]]:
    with FakeMediaServer("jellyfin") as jellyfin, FakeMediaServer("plex") as plex:
        yield {"jellyfin": jellyfin, "plex": plex}


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory, fakes: dict[str, FakeMediaServer]) -> Iterator[LiveService]:
    tmp = tmp_path_factory.mktemp("subgen")
    library = tmp / "library"
    for folder in ("tv", "movies"):
        (library / folder).mkdir(parents=True)
    settings = engine_settings(
        tmp,
        transcriptarr_mode="standalone",
        library_paths=str(library),
        library_min_duration_seconds=0,
        api_key=KEY,
        # SubGen's PATH_MAPPING_FROM=/data, PATH_MAPPING_TO=<library>.
        path_mappings=f"/data:{library}",
        jellyfin_url=fakes["jellyfin"].url,
        jellyfin_api_key=TOKEN,
        plex_url=fakes["plex"].url,
        plex_token=TOKEN,
    )
    with LiveService(settings, workers=False) as live:
        yield live


@pytest.fixture
def library(service: LiveService) -> Path:
    return service.settings.library_paths[0]


def place(movie: Path, library: Path, sent: str) -> Path:
    """A copy of the test video where the sender's path `sent` (/data/...) lands."""
    dest = library / sent.removeprefix("/data/")
    dest.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(movie, dest)
    return dest


def post(
    service: LiveService, path: str, *, params: dict[str, str] | None = None, key: bool = True, **body: Any
) -> requests.Response:
    """The key as `?apikey=` (what Plex and Emby can send; every SubGen client can put it in the URL)."""
    query = {**({"apikey": KEY} if key else {}), **(params or {})}
    return requests.post(f"{service.url}{path}", params=query, timeout=60, **body)


def jobs_for(service: LiveService, path: Path) -> list[Job]:
    jobs = service.call(lambda parts: parts.queue.list_jobs(limit=500))
    return [job for job in jobs if job.media_path == str(path)]


def all_jobs(service: LiveService) -> int:
    return len(service.call(lambda parts: parts.queue.list_jobs(limit=500)))


def handled(response: requests.Response, *, queued: bool = True) -> dict[str, Any]:
    assert response.status_code == 202, response.text
    body = dict(response.json())
    assert body["queued"] is queued, body
    return body


def webhook_job(service: LiveService, path: Path, server: str, kind: str) -> Job:
    [job] = jobs_for(service, path)
    assert job.source == Source.WEBHOOK and job.state == JobState.QUEUED
    assert SOURCE_PRIORITY[Source.WEBHOOK] <= job.priority < SOURCE_PRIORITY[Source.BAZARR]
    assert (job.details["webhook"]["server"], job.details["webhook"]["kind"]) == (server, kind)
    return job


# --------------------------------------------------------------------------- /tautulli


def test_tautulli_recently_added_as_subgen_documents_it(service: LiveService, library: Path, movie: Path) -> None:
    body = json.loads((PAYLOADS / "subgen_tautulli_added.json").read_text(encoding="utf-8"))
    local = place(movie, library, body["file"])
    answer = handled(post(service, "/tautulli", json=body, headers=TAUTULLI))
    assert answer["path"] == str(local)  # /data/... through PATH_MAPPINGS
    webhook_job(service, local, "plex", "added")


def test_tautulli_played_and_events_subgen_does_not_act_on(service: LiveService, library: Path, movie: Path) -> None:
    local = place(movie, library, "/data/tv/Lost/Season 01/Lost - S01E01.mkv")
    played = {"event": "played", "file": "/data/tv/Lost/Season 01/Lost - S01E01.mkv", "mediatype": "episode"}
    handled(post(service, "/tautulli", json=played, headers=TAUTULLI))
    webhook_job(service, local, "plex", "played")
    before = all_jobs(service)
    stopped = post(service, "/tautulli", json={**played, "event": "stop"}, headers=TAUTULLI)
    assert stopped.status_code == 200 and "not handled" in stopped.json()["ignored"]
    assert all_jobs(service) == before


@pytest.mark.parametrize(
    ("body", "words"),
    [
        ({"file": "/data/movies/x.mkv"}, '"event"'),
        ({"event": "added", "filename": "x.mkv"}, '"file"'),
        ({"event": "added", "file": "/data/tv/Show", "mediatype": "show"}, "rating_key"),
    ],
)
def test_tautulli_bodies_that_cannot_work_are_400(service: LiveService, body: dict[str, Any], words: str) -> None:
    response = post(service, "/tautulli", json=body, headers=TAUTULLI)
    assert response.status_code == 400, response.text
    assert words in response.json()["error"]


# --------------------------------------------------------------------------- /plex, /jellyfin, /emby


def test_plex_multipart_payload_asks_plex_for_the_file(
    service: LiveService, fakes: dict[str, FakeMediaServer], library: Path, movie: Path
) -> None:
    local = place(movie, library, "/data/tv/Dark/Season 01/Dark - S01E01.mkv")
    fakes["plex"].add(FakeItem("9001", "episode", "Secrets", "/data/tv/Dark/Season 01/Dark - S01E01.mkv"))
    payload = plex_event("library.new", {"ratingKey": "9001", "type": "episode", "title": "Secrets"})
    handled(post(service, "/plex", files=plex_multipart(payload), headers=PLEX_AGENT))
    assert webhook_job(service, local, "plex", "added").details["webhook"]["item_id"] == "9001"


def test_jellyfin_send_all_properties_looks_the_item_up(
    service: LiveService, fakes: dict[str, FakeMediaServer], library: Path, movie: Path
) -> None:
    local = place(movie, library, "/data/movies/Ronin (1998)/Ronin (1998).mkv")
    item = uuid.uuid4()
    fakes["jellyfin"].add(FakeItem(item.hex, "Movie", "Ronin", "/data/movies/Ronin (1998)/Ronin (1998).mkv"))
    event = jellyfin_all_properties("PlaybackStart", str(item), "Movie", "Ronin")
    handled(post(service, "/jellyfin", data=json.dumps(event), headers=JELLYFIN))
    webhook_job(service, local, "jellyfin", "played")


def test_emby_multipart_data_with_the_items_path(service: LiveService, library: Path, movie: Path) -> None:
    local = place(movie, library, "/data/movies/Heat (1995)/Heat (1995).mkv")
    item = {"Name": "Heat", "Id": "4711", "Type": "Movie", "Path": "/data/movies/Heat (1995)/Heat (1995).mkv"}
    handled(post(service, "/emby", files={"data": (None, json.dumps(emby_event("library.new", item)))}))
    webhook_job(service, local, "emby", "added")
    test = {"Title": "Test Notification", "Event": "system.notificationtest", "Severity": "Info"}
    answer = post(service, "/emby", files={"data": (None, json.dumps(test))})
    assert answer.status_code == 200 and "ignored" in answer.json()


# --------------------------------------------------------------------------- /webhook: any of them


def test_webhook_tells_the_sender_by_its_body(
    service: LiveService, fakes: dict[str, FakeMediaServer], library: Path, movie: Path
) -> None:
    plex_file = place(movie, library, "/data/movies/Alien 3 (1992)/Alien 3 (1992).mkv")
    fakes["plex"].add(FakeItem("9002", "movie", "Alien 3", "/data/movies/Alien 3 (1992)/Alien 3 (1992).mkv"))
    payload = plex_event("media.play", {"ratingKey": "9002", "type": "movie", "title": "Alien 3"})
    handled(post(service, "/webhook", files=plex_multipart(payload), headers=PLEX_AGENT))  # SubGen's first URL
    webhook_job(service, plex_file, "plex", "played")
    tautulli_file = place(movie, library, "/data/movies/Prometheus (2012)/Prometheus (2012).mkv")
    body = {"event": "added", "file": "/data/movies/Prometheus (2012)/Prometheus (2012).mkv", "mediatype": "movie"}
    handled(post(service, "/webhook", json=body, headers=TAUTULLI))
    webhook_job(service, tautulli_file, "plex", "added")
    emby_file = place(movie, library, "/data/movies/Covenant (2017)/Covenant (2017).mkv")
    item = {
        "Name": "Covenant",
        "Id": "4712",
        "Type": "Movie",
        "Path": "/data/movies/Covenant (2017)/Covenant (2017).mkv",
    }
    handled(post(service, "/webhook", files={"data": (None, json.dumps(emby_event("playback.start", item)))}))
    webhook_job(service, emby_file, "emby", "played")
    jellyfin_file = place(movie, library, "/data/movies/Romulus (2024)/Romulus (2024).mkv")
    event = jellyfin_all_properties(
        "ItemAdded", str(uuid.uuid4()), "Movie", "Romulus", path="/data/movies/Romulus (2024)/Romulus (2024).mkv"
    )
    handled(post(service, "/webhook", json=event, headers=JELLYFIN))
    webhook_job(service, jellyfin_file, "jellyfin", "added")
    unknown = post(service, "/webhook", json={"hello": "world"})
    assert unknown.status_code == 400 and "cannot tell which server" in unknown.json()["error"]


# --------------------------------------------------------------------------- /batch


def test_batch_queues_every_media_file_under_a_folder_at_manual_priority(
    service: LiveService, library: Path, movie: Path
) -> None:
    episodes = [place(movie, library, f"/data/tv/Batch Show/Season 01/E0{n}.mkv") for n in (1, 2)]
    (episodes[0].parent / "notes.txt").write_text("not media", encoding="utf-8")
    subbed = place(movie, library, "/data/tv/Batch Show/Season 01/E03.mkv")
    subbed.with_suffix(".en.srt").write_text("1\n00:00:00,500 --> 00:00:01,500\nHello.\n\n", encoding="utf-8")
    answer = post(service, "/batch", params={"directory": "/data/tv/Batch Show"})
    body = handled(answer, queued=False)
    assert "background" in body["reason"] and body["paths"] == [str(library / "tv" / "Batch Show")]
    for episode in episodes:
        [job] = wait_for(lambda episode=episode: jobs_for(service, episode))
        assert job.source == Source.MANUAL and job.details["webhook"]["server"] == "batch"
        assert SOURCE_PRIORITY[Source.MANUAL] <= job.priority < SOURCE_PRIORITY[Source.MANUAL] + 100  # the band
    assert jobs_for(service, subbed) == []  # already has English subtitles: the library's rules decide


def test_batch_of_one_file_with_a_forced_language(service: LiveService, library: Path, movie: Path) -> None:
    local = place(movie, library, "/data/movies/Das Boot (1981)/Das Boot (1981).mkv")
    answer = post(service, "/batch", params={"directory": str(local), "forceLanguage": "german"})
    body = handled(answer)
    [job] = jobs_for(service, local)
    assert body["job_id"] == job.id and job.source == Source.MANUAL
    assert job.source_language == "de"  # the audio is taken to be German, as SubGen's forceLanguage does
    assert any("FORCE_LANGUAGE" in reason for reason in body["reasons"]), body


@pytest.mark.parametrize(
    ("params", "status", "words"),
    [
        ({}, 400, "directory="),
        ({"directory": "  "}, 400, "directory="),
        ({"directory": "/data/movies", "forceLanguage": "klingon"}, 400, "forceLanguage"),
        ({"directory": "/etc"}, 403, "LIBRARY_PATHS"),
        ({"directory": "/data/movies|/etc"}, 403, "LIBRARY_PATHS"),
        ({"directory": "/data/movies/Nothing Here (1900)"}, 404, "does not exist"),
    ],
)
def test_batch_refuses_bad_input_before_queueing(
    service: LiveService, params: dict[str, str], status: int, words: str
) -> None:
    before = all_jobs(service)
    response = post(service, "/batch", params=params)
    assert response.status_code == status, response.text
    assert words in response.json()["error"]
    assert all_jobs(service) == before


# --------------------------------------------------------------------------- key and methods


@pytest.mark.parametrize("path", ["/plex", "/jellyfin", "/emby", "/tautulli", "/webhook", "/batch"])
def test_every_subgen_url_needs_the_api_key(service: LiveService, path: str) -> None:
    before = all_jobs(service)
    body = {"event": "added", "file": "/data/movies/x.mkv"}
    for headers in ({}, {"X-Api-Key": "wrong"}):
        refused = post(service, path, key=False, json=body, headers={**TAUTULLI, **headers})
        assert refused.status_code == 401 and "API key" in refused.json()["error"]
    in_header = requests.post(
        f"{service.url}{path}", json=body, headers={**TAUTULLI, "X-Api-Key": KEY}, timeout=30
    )  # Tautulli's JSON headers, Jellyfin's request headers
    assert in_header.status_code != 401
    assert all_jobs(service) == before


def test_get_says_to_post(service: LiveService) -> None:
    response = requests.get(f"{service.url}/plex", params={"apikey": KEY}, timeout=30)
    assert response.status_code == 405 and response.headers["Allow"] == "POST"
    assert "takes POST" in response.json()["error"]
