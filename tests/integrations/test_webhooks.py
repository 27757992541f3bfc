"""Media-server webhooks over real loopback HTTP: captured-format payloads in, jobs out, a refresh after.

A real service (SQLite queue, HTTP server, the library's rules with ffprobe on real
files) runs in a thread (tests/api/live.py); fake Jellyfin, Emby and Plex servers
answer the API calls it makes (fake_mediaserver.py). The payloads have the shape
the servers really send:

- Jellyfin: the Webhook plugin's Generic destination, "Send All Properties" (JSON
  of the plugin's data object) or the documented template (strings, empty when unset);
- Emby: `{"Event", "Item": {...}, "Server", ...}` as a JSON body or in a multipart `data` part;
- Plex: multipart/form-data with a `payload` JSON part and a `thumb` JPEG part; never a path;
- Tautulli: the JSON data users write from Tautulli's parameters ({action}, {rating_key}, ...).
"""

from __future__ import annotations

import json
import shutil
import socket
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.acceptance.engine_harness import engine_settings, normalise
from tests.api.live import LiveService
from tests.integrations.fake_mediaserver import TOKEN, FakeItem, FakeMediaServer
from tests.media_factory import fixture_path, make_video
from transcriptarr.db.models import FINISHED_STATES, Job, JobState, Source, Task
from transcriptarr.integrations.followups import Attempt, FollowUpError
from transcriptarr.integrations.mediaservers.refresh import MediaServerRefresh, refresh_from_settings
from transcriptarr.queue.jobqueue import NewJob, job_from_values
from transcriptarr.queue.keys import SOURCE_PRIORITY

KEY = "webhook-key"
JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + bytes(200) + b"\xff\xd9"  # Plex's thumb part: not read


# --------------------------------------------------------------------------- payloads as the servers send them


def jellyfin_all_properties(
    notification: str, item_id: str, item_type: str, name: str, *, path: str | None = None, series: str | None = None
) -> dict[str, Any]:
    """The Webhook plugin's Generic destination with "Send All Properties": its data object as JSON."""
    data: dict[str, Any] = {
        "ServerId": "2a7e4b3ad4e64f6c9b1b8e07c4b55d0e",
        "ServerName": "jellyfin",
        "ServerVersion": "10.9.11",
        "ServerUrl": "http://jellyfin:8096",
        "NotificationType": notification,
        "Timestamp": "2024-11-02T10:15:30.1234567+01:00",
        "UtcTimestamp": "2024-11-02T09:15:30.1234567Z",
        "Name": name,
        "Overview": "A test item.",
        "Tagline": "",
        "ItemId": item_id,
        "ItemType": item_type,
        "RunTimeTicks": 20_000_000,
        "RunTime": "00:00:02",
        "Year": 2020,
        "PremiereDate": "2020-01-01",
        "Provider_tmdb": "550",
        "Provider_imdb": "tt0137523",
        "Video_0_Title": "1080p H264 SDR",
        "Video_0_Type": "Video",
        "Video_0_Codec": "h264",
        "Audio_0_Title": "English - AAC - Stereo - Default",
        "Audio_0_Type": "Audio",
        "Audio_0_Language": "eng",
        "Audio_0_Codec": "aac",
        "Audio_0_Channels": 2,
        "Audio_0_Default": True,
    }
    if path is not None:
        data["Path"] = path
    if series is not None:
        data.update(SeriesName=series, SeriesId=uuid.uuid4().hex, SeasonNumber=1, SeasonNumber00="01")
        data.update(EpisodeNumber=1, EpisodeNumber00="01", EpisodeNumber000="001")
    if notification == "PlaybackStart":
        data.update(
            PlaybackPositionTicks=0,
            PlaybackPosition="00:00:00",
            MediaSourceId=item_id.replace("-", ""),
            IsPaused=False,
            IsAutomated=False,
            DeviceId="TW96aWxsYS81LjA",
            DeviceName="Firefox",
            ClientName="Jellyfin Web",
            NotificationUsername="alice",
            UserId="6f1a0b5c2d3e4f5a6b7c8d9e0f1a2b3c",
            PlayMethod="DirectPlay",
        )
    return data


def jellyfin_template(notification: str, item_id: str, item_type: str, name: str, path: str = "") -> dict[str, Any]:
    """The documented template as the plugin renders it: every value a string, '' when unset."""
    template = (
        '{"NotificationType": "%s", "ItemId": "%s", "ItemType": "%s", "Name": "%s", "SeriesName": "", "Path": "%s"}'
    )
    return json.loads(template % (notification, item_id, item_type, name, path))


def emby_event(event: str, item: dict[str, Any]) -> dict[str, Any]:
    data: dict[str, Any] = {
        "Title": f"{item.get('Name')} on emby",
        "Date": "2024-11-02T09:15:30.0000000Z",
        "Event": event,
        "Severity": "Info",
        "Item": {
            "ServerId": "7c1b2a3d4e5f60718293a4b5c6d7e8f9",
            "DateCreated": "2024-11-02T09:10:00.0000000Z",
            "Container": "mkv",
            "RunTimeTicks": 20_000_000,
            "IsFolder": False,
            "ParentId": "1234",
            "MediaType": "Video",
            "ImageTags": {"Primary": "d3b07384d113edec49eaa6238ad5ff00"},
            **item,
        },
        "Server": {"Name": "emby", "Id": "7c1b2a3d4e5f60718293a4b5c6d7e8f9", "Version": "4.8.10.0"},
    }
    if event.startswith("playback."):
        data["User"] = {"Name": "alice", "Id": "5"}
        data["Session"] = {"RemoteEndPoint": "192.0.2.10", "Client": "Emby Web", "DeviceName": "Firefox", "Id": "s1"}
        data["PlaybackInfo"] = {"PositionTicks": 0, "PlaylistIndex": 0, "PlaylistLength": 1, "PlaySessionId": "p1"}
    return data


def plex_event(event: str, metadata: dict[str, Any]) -> dict[str, Any]:
    return {
        "event": event,
        "user": True,
        "owner": True,
        "Account": {"id": 1, "thumb": "https://plex.tv/users/1022b120ffbaa/avatar?c=1465525047", "title": "elan"},
        "Server": {"title": "Office", "uuid": "54664a3d8acc39983675640ec9ce00b70af9cc36"},
        "Player": {"local": True, "publicAddress": "192.0.2.10", "title": "Plex Web (Firefox)", "uuid": "r6yfkdnf"},
        "Metadata": {
            "librarySectionType": "show" if metadata.get("type") in ("episode", "show", "season") else "movie",
            "key": f"/library/metadata/{metadata.get('ratingKey')}",
            "guid": "plex://movie/5d776b59ad5437001f79c6f8",
            "librarySectionTitle": "Media",
            "librarySectionID": 2,
            "librarySectionKey": "/library/sections/2",
            "summary": "",
            "addedAt": 1730538930,
            "updatedAt": 1730538930,
            **metadata,
        },
    }


def plex_multipart(payload: dict[str, Any]) -> dict[str, Any]:
    """As Plex posts it: a `payload` part (JSON) and a `thumb` part (JPEG)."""
    return {
        "payload": (None, json.dumps(payload), "application/json"),
        "thumb": ("image.jpg", JPEG, "image/jpeg"),
    }


def tautulli_body(action: str, rating_key: str, media_type: str, title: str, file: str = "") -> dict[str, Any]:
    """The JSON data from the docs, as Tautulli fills in {action}, {rating_key}, ..."""
    return {"action": action, "rating_key": rating_key, "media_type": media_type, "title": title, "file": file}


# --------------------------------------------------------------------------- the service and its helpers


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture(scope="module")
def fakes() -> Iterator[dict[str, FakeMediaServer]]:
    with FakeMediaServer("jellyfin") as jellyfin, FakeMediaServer("emby") as emby, FakeMediaServer("plex") as plex:
        yield {"jellyfin": jellyfin, "emby": emby, "plex": plex}


def library_settings(tmp: Path, **overrides: Any) -> Any:
    library = tmp / "library"
    for folder in ("movies", "tv"):
        (library / folder).mkdir(parents=True, exist_ok=True)
    values: dict[str, Any] = {
        "transcriptarr_mode": "standalone",
        "library_paths": str(library),
        "library_min_duration_seconds": 0,
        "api_key": KEY,
        # Bazarr-style container paths, and a Plex server on Windows.
        "path_mappings": f"/data/movies:{library}/movies|/data/tv:{library}/tv|D:\\Media\\TV:{library}/tv",
    }
    values.update(overrides)
    return engine_settings(tmp, **values)


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory, fakes: dict[str, FakeMediaServer]) -> Iterator[LiveService]:
    settings = library_settings(
        tmp_path_factory.mktemp("webhooks"),
        jellyfin_url=fakes["jellyfin"].url,
        jellyfin_api_key=TOKEN,
        emby_url=fakes["emby"].url,
        emby_api_key=TOKEN,
        plex_url=fakes["plex"].url,
        plex_token=TOKEN,
    )
    with LiveService(settings, workers=False) as live:
        yield live


@pytest.fixture
def library(service: LiveService) -> Path:
    return service.settings.library_paths[0]


def place(movie: Path, library: Path, relative: str) -> Path:
    """A copy of the test video at `library/relative`."""
    dest = library / relative
    dest.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(movie, dest)
    return dest


def post(
    service: LiveService, route: str, *, key: str | None = KEY, params: dict[str, str] | None = None, **body: Any
) -> requests.Response:
    headers = {"X-Api-Key": key} if key is not None else {}
    return requests.post(f"{service.url}/webhooks/{route}", headers=headers, params=params, timeout=60, **body)


def all_jobs(service: LiveService) -> list[Job]:
    return service.call(lambda parts: parts.queue.list_jobs(limit=500))


def jobs_for(service: LiveService, path: Path) -> list[Job]:
    return [job for job in all_jobs(service) if job.media_path == str(path)]


def wait_for(check: Callable[[], Any], timeout: float = 30.0) -> Any:
    """Poll `check` until it returns something true, within a deadline."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if found := check():
            return found
        time.sleep(0.05)
    raise AssertionError(f"nothing after {timeout} s")


def assert_webhook_job(job: Job, server: str, item_id: str, kind: str) -> None:
    assert job.source == Source.WEBHOOK
    assert SOURCE_PRIORITY[Source.WEBHOOK] <= job.priority < SOURCE_PRIORITY[Source.BAZARR]
    assert job.state == JobState.QUEUED
    webhook = job.details["webhook"]
    assert (webhook["server"], webhook["item_id"], webhook["kind"]) == (server, item_id, kind)


def assert_handled(response: requests.Response, *, queued: bool) -> dict[str, Any]:
    assert response.status_code == 202, response.text
    body = response.json()
    assert body["queued"] is queued, body
    return dict(body)


# --------------------------------------------------------------------------- Jellyfin


def test_jellyfin_item_added_queues_the_mapped_file_at_webhook_priority(
    service: LiveService, library: Path, movie: Path
) -> None:
    local = place(movie, library, "movies/Fight Club (1999)/Fight Club (1999).mkv")
    item = str(uuid.uuid4())  # the plugin writes the GUID with dashes
    payload = jellyfin_all_properties(
        "ItemAdded", item, "Movie", "Fight Club", path="/data/movies/Fight Club (1999)/Fight Club (1999).mkv"
    )
    body = assert_handled(post(service, "jellyfin", json=payload), queued=True)
    assert body["path"] == str(local)
    [job] = jobs_for(service, local)
    assert body["job_id"] == job.id
    assert job.task == Task.TRANSCRIBE and job.target_language is None  # TARGET_LANGUAGES=original
    assert_webhook_job(job, "jellyfin", item, "added")


def test_jellyfin_template_without_path_asks_jellyfin_for_it(
    service: LiveService, fakes: dict[str, FakeMediaServer], library: Path, movie: Path
) -> None:
    local = place(movie, library, "tv/Severance/Season 01/Severance - S01E01.mkv")
    item = uuid.uuid4()
    fakes["jellyfin"].add(
        FakeItem(item.hex, "Episode", "Good News About Hell", "/data/tv/Severance/Season 01/Severance - S01E01.mkv")
    )
    payload = jellyfin_template("PlaybackStart", str(item), "Episode", "Good News About Hell")
    body = assert_handled(post(service, "jellyfin", json=payload), queued=True)
    [job] = jobs_for(service, local)
    assert body["job_id"] == job.id
    assert_webhook_job(job, "jellyfin", item.hex, "played")
    [(method, path, query, headers)] = [call for call in fakes["jellyfin"].calls if call[2].get("ids") == str(item)]
    assert (method, path, query["fields"]) == ("GET", "/Items", "Path")
    assert headers["Authorization"] == f'MediaBrowser Token="{TOKEN}"'


def test_jellyfin_series_added_queues_its_episodes_in_the_background(
    service: LiveService, fakes: dict[str, FakeMediaServer], library: Path, movie: Path
) -> None:
    series, season = uuid.uuid4().hex, uuid.uuid4().hex
    episodes = [place(movie, library, f"tv/Dark/Season 01/Dark - S01E0{n}.mkv") for n in (1, 2)]
    fakes["jellyfin"].add(
        FakeItem(series, "Series", "Dark"),
        FakeItem(season, "Season", "Season 1", parents=(series,), series="Dark"),
        *(
            FakeItem(
                uuid.uuid4().hex,
                "Episode",
                f"E{n}",
                f"/data/tv/Dark/Season 01/Dark - S01E0{n}.mkv",
                (series, season),
                "Dark",
            )
            for n in (1, 2)
        ),
        FakeItem(uuid.uuid4().hex, "Episode", "Not aired yet", None, (series, season), "Dark"),  # virtual: no file
    )
    payload = jellyfin_all_properties("ItemAdded", series, "Series", "Dark", path="/data/tv/Dark")
    body = assert_handled(post(service, "jellyfin", json=payload), queued=False)
    assert body["files"] == 2 and "background" in body["reason"]
    for episode in episodes:
        [job] = wait_for(lambda episode=episode: jobs_for(service, episode))
        assert job.source == Source.WEBHOOK and job.details["webhook"]["item_id"] != series  # the episode's own id


# --------------------------------------------------------------------------- Emby


def test_emby_library_new_as_json_queues_the_file(service: LiveService, library: Path, movie: Path) -> None:
    local = place(movie, library, "movies/Heat (1995)/Heat (1995).mkv")
    item = {"Name": "Heat", "Id": "751181", "Type": "Movie", "Path": "/data/movies/Heat (1995)/Heat (1995).mkv"}
    assert_handled(post(service, "emby", json=emby_event("library.new", item)), queued=True)
    [job] = jobs_for(service, local)
    assert_webhook_job(job, "emby", "751181", "added")


def test_emby_playback_start_in_a_multipart_data_part_asks_emby_for_the_path(
    service: LiveService, fakes: dict[str, FakeMediaServer], library: Path, movie: Path
) -> None:
    local = place(movie, library, "movies/Ronin (1998)/Ronin (1998).mkv")
    fakes["emby"].add(FakeItem("90210", "Movie", "Ronin", "/data/movies/Ronin (1998)/Ronin (1998).mkv"))
    event = emby_event("playback.start", {"Name": "Ronin", "Id": "90210", "Type": "Movie"})
    response = post(service, "emby", files={"data": (None, json.dumps(event))})
    assert_handled(response, queued=True)
    [job] = jobs_for(service, local)
    assert_webhook_job(job, "emby", "90210", "played")
    [(_, path, _, headers)] = [call for call in fakes["emby"].calls if call[2].get("ids") == "90210"]
    assert path == "/emby/Items" and headers["X-Emby-Token"] == TOKEN


# --------------------------------------------------------------------------- Plex and Tautulli


def test_plex_library_new_resolves_a_windows_path_through_plex(
    service: LiveService, fakes: dict[str, FakeMediaServer], library: Path, movie: Path
) -> None:
    local = place(movie, library, "tv/Show/Season 01/Show - S01E01.mkv")
    fakes["plex"].add(FakeItem("4242", "episode", "Pilot", "D:\\Media\\TV\\Show\\Season 01\\Show - S01E01.mkv"))
    payload = plex_event("library.new", {"ratingKey": "4242", "type": "episode", "title": "Pilot"})
    # Plex cannot send headers: the key comes as a parameter of the webhook URL.
    response = post(service, "plex", key=None, params={"apikey": KEY}, files=plex_multipart(payload))
    body = assert_handled(response, queued=True)
    assert body["path"] == str(local)
    [job] = jobs_for(service, local)
    assert_webhook_job(job, "plex", "4242", "added")
    [(_, _, _, headers)] = [call for call in fakes["plex"].calls if call[1] == "/library/metadata/4242"]
    assert headers["X-Plex-Token"] == TOKEN and headers["Accept"] == "application/json"


def test_plex_show_added_queues_every_episode(
    service: LiveService, fakes: dict[str, FakeMediaServer], library: Path, movie: Path
) -> None:
    episodes = [place(movie, library, f"tv/Lost/Season 01/Lost - S01E0{n}.mkv") for n in (1, 2, 3)]
    fakes["plex"].add(
        FakeItem("500", "show", "Lost"),
        *(
            FakeItem(f"50{n}", "episode", f"E{n}", f"/data/tv/Lost/Season 01/Lost - S01E0{n}.mkv", ("500",), "Lost")
            for n in (1, 2, 3)
        ),
    )
    payload = plex_event("library.new", {"ratingKey": "500", "type": "show", "title": "Lost"})
    body = assert_handled(post(service, "plex", files=plex_multipart(payload)), queued=False)
    assert body["files"] == 3
    jobs = [wait_for(lambda e=episode: jobs_for(service, e))[0] for episode in episodes]
    assert sorted(job.details["webhook"]["item_id"] for job in jobs) == ["501", "502", "503"]


def test_tautulli_recently_added_with_the_file_queues_it(service: LiveService, library: Path, movie: Path) -> None:
    local = place(movie, library, "movies/Alien (1979)/Alien (1979).mkv")
    body = tautulli_body("created", "777", "movie", "Alien", "/data/movies/Alien (1979)/Alien (1979).mkv")
    assert_handled(post(service, "tautulli", json=body), queued=True)
    [job] = jobs_for(service, local)
    assert_webhook_job(job, "plex", "777", "added")  # Tautulli's items are Plex's: Plex is refreshed


def test_tautulli_play_without_a_file_asks_plex(
    service: LiveService, fakes: dict[str, FakeMediaServer], library: Path, movie: Path
) -> None:
    local = place(movie, library, "movies/Aliens (1986)/Aliens (1986).mkv")
    fakes["plex"].add(FakeItem("778", "movie", "Aliens", "/data/movies/Aliens (1986)/Aliens (1986).mkv"))
    assert_handled(post(service, "tautulli", json=tautulli_body("play", "778", "movie", "Aliens")), queued=True)
    [job] = jobs_for(service, local)
    assert_webhook_job(job, "plex", "778", "played")


# --------------------------------------------------------------------------- what is not queued


def test_the_same_event_twice_makes_one_job(service: LiveService, library: Path, movie: Path) -> None:
    local = place(movie, library, "movies/Twice (2001)/Twice (2001).mkv")
    payload = jellyfin_all_properties("ItemAdded", str(uuid.uuid4()), "Movie", "Twice", path=str(local))
    first = assert_handled(post(service, "jellyfin", json=payload), queued=True)
    again = assert_handled(post(service, "jellyfin", json=payload), queued=False)
    assert again["job_id"] == first["job_id"] and "already queued" in again["reason"]
    assert len(jobs_for(service, local)) == 1


def test_a_file_with_subtitles_is_not_queued(service: LiveService, library: Path, movie: Path) -> None:
    local = place(movie, library, "movies/Subbed (2002)/Subbed (2002).mkv")
    local.with_suffix(".en.srt").write_text("1\n00:00:00,500 --> 00:00:01,500\nHello.\n\n", encoding="utf-8")
    payload = jellyfin_all_properties("ItemAdded", str(uuid.uuid4()), "Movie", "Subbed", path=str(local))
    body = assert_handled(post(service, "jellyfin", json=payload), queued=False)
    assert body["job_id"] is None and "nothing to do" in body["reason"], body
    assert any("has English subtitles" in reason for reason in body["reasons"]), body
    assert jobs_for(service, local) == []


def test_playing_a_file_moves_its_queued_scan_job_up(service: LiveService, library: Path, movie: Path) -> None:
    local = place(movie, library, "movies/Waiting (2003)/Waiting (2003).mkv")
    scan = service.call(
        lambda parts: parts.queue.enqueue(
            NewJob(source=Source.SCAN, media_path=str(local), priority=150, details={"reason": "no subtitles"})
        )
    ).job
    item = str(uuid.uuid4())
    payload = jellyfin_all_properties("PlaybackStart", item, "Movie", "Waiting", path=str(local))
    body = assert_handled(post(service, "jellyfin", json=payload), queued=False)
    assert body["job_id"] == scan.id and "moved up" in body["reason"]
    [job] = jobs_for(service, local)
    assert job.source == Source.SCAN and job.priority >= SOURCE_PRIORITY[Source.WEBHOOK]
    # The scan's job learns the item, so Jellyfin is refreshed when its subtitle is written.
    assert job.details["reason"] == "no subtitles"
    assert (job.details["webhook"]["server"], job.details["webhook"]["item_id"]) == ("jellyfin", item)


IGNORED: list[tuple[str, dict[str, Any]]] = [
    ("jellyfin", jellyfin_all_properties("PlaybackStop", str(uuid.uuid4()), "Movie", "Heat")),
    ("jellyfin", jellyfin_all_properties("ItemAdded", str(uuid.uuid4()), "MusicAlbum", "Kind of Blue")),
    ("jellyfin", {"NotificationType": "UserLockedOut", "NotificationUsername": "bob"}),
    ("emby", emby_event("playback.stop", {"Name": "Heat", "Id": "1", "Type": "Movie", "Path": "/data/movies/x"})),
    ("emby", {"Title": "Test Notification", "Event": "system.notificationtest", "Severity": "Info"}),
    ("emby", emby_event("library.new", {"Name": "Photo", "Id": "2", "Type": "Photo", "Path": "/data/p.jpg"})),
    ("plex", plex_event("media.pause", {"ratingKey": "4242", "type": "episode", "title": "Pilot"})),
    ("plex", plex_event("library.new", {"ratingKey": "9", "type": "artist", "title": "Miles Davis"})),
    ("tautulli", tautulli_body("stop", "777", "movie", "Alien")),
    ("tautulli", tautulli_body("created", "12", "album", "Kind of Blue", "/data/music/Kind of Blue")),
]


@pytest.mark.parametrize(("route", "payload"), IGNORED, ids=[f"{r}-{i}" for i, (r, _) in enumerate(IGNORED)])
def test_events_we_do_not_act_on_are_answered_200_and_queue_nothing(
    service: LiveService, route: str, payload: dict[str, Any]
) -> None:
    before = len(all_jobs(service))
    body = {"files": plex_multipart(payload)} if route == "plex" else {"json": payload}
    response = post(service, route, **body)
    assert response.status_code == 200, response.text
    assert response.json()["ignored"]
    assert len(all_jobs(service)) == before


MALFORMED: list[tuple[str, dict[str, Any], str]] = [
    ("jellyfin", {"data": b"{not json", "headers": {"Content-Type": "application/json"}}, "not JSON"),
    ("jellyfin", {"json": [1, 2, 3]}, "JSON object"),
    ("jellyfin", {"json": {"ItemId": "abc", "Name": "x"}}, "NotificationType"),
    ("jellyfin", {"json": {"NotificationType": "ItemAdded", "ItemType": "Movie"}}, "ItemId"),
    ("jellyfin", {"json": {"NotificationType": "ItemAdded", "ItemId": "../../System/Restart"}}, "item id"),
    ("emby", {"json": {"Event": "library.new"}}, "Item"),
    ("emby", {"json": {"Event": "library.new", "Item": {"Name": "x"}}}, "Id"),
    ("emby", {"files": {"other": (None, "{}")}}, "'data'"),
    ("plex", {"files": {"thumb": ("image.jpg", JPEG, "image/jpeg")}}, "'payload'"),
    ("plex", {"files": {"payload": (None, "event=library.new")}}, "not JSON"),
    ("plex", {"files": plex_multipart({"event": "library.new"})}, "Metadata"),
    (
        "plex",
        {"files": plex_multipart(plex_event("library.new", {"ratingKey": "12; DROP", "type": "movie"}))},
        "ratingKey",
    ),
    (
        "plex",
        {
            "data": b'--x\r\nContent-Disposition: form-data; name="payload"\r\n\r\n{',
            "headers": {"Content-Type": "multipart/form-data; boundary=x"},
        },
        "not JSON",
    ),
    ("tautulli", {"json": {"rating_key": "1", "file": "/data/movies/x.mkv"}}, "action"),
    ("tautulli", {"json": {"action": "created", "media_type": "movie", "title": "x"}}, "rating_key"),
    ("tautulli", {"json": {"action": "created", "media_type": "show", "file": "/data/tv/x"}}, "rating_key"),
]


@pytest.mark.parametrize(
    ("route", "body", "words"), MALFORMED, ids=[f"{r}-{i}" for i, (r, _, _) in enumerate(MALFORMED)]
)
def test_malformed_bodies_are_400_with_a_reason_and_queue_nothing(
    service: LiveService, route: str, body: dict[str, Any], words: str
) -> None:
    before = len(all_jobs(service))
    headers = {"X-Api-Key": KEY, **body.pop("headers", {})}
    response = requests.post(f"{service.url}/webhooks/{route}", headers=headers, timeout=30, **body)
    assert response.status_code == 400, response.text
    assert words in response.json()["error"]
    assert len(all_jobs(service)) == before


def test_an_oversized_body_is_413(service: LiveService) -> None:
    huge = "x" * (2 * 1024 * 1024)
    for route, body in (
        ("jellyfin", {"json": {"NotificationType": huge}}),
        ("emby", {"files": {"data": (None, huge)}}),
    ):
        response = post(service, route, **body)
        assert response.status_code == 413, response.text
        assert "1 MiB" in response.json()["error"]


@pytest.mark.parametrize("route", ["jellyfin", "emby", "plex", "tautulli"])
def test_the_api_key_is_required(service: LiveService, route: str) -> None:
    payload = jellyfin_all_properties("ItemAdded", str(uuid.uuid4()), "Movie", "x", path="/data/movies/x.mkv")
    for key in (None, "wrong"):
        response = post(service, route, key=key, json=payload)
        assert response.status_code == 401, response.text
        assert "API key" in response.json()["error"]
    wrong_in_query = post(service, route, key=None, params={"apikey": "wrong"}, json=payload)
    assert wrong_in_query.status_code == 401


@pytest.mark.parametrize(
    "path",
    ["/elsewhere/Film (2004)/Film (2004).mkv", "/data/movies/../../../../etc/passwd"],
    ids=["unmapped", "dotdot"],
)
def test_a_path_outside_the_libraries_is_refused(service: LiveService, path: str) -> None:
    before = len(all_jobs(service))
    payload = jellyfin_all_properties("ItemAdded", str(uuid.uuid4()), "Movie", "Film", path=path)
    response = post(service, "jellyfin", json=payload)
    assert response.status_code == 403, response.text
    assert "LIBRARY_PATHS" in response.json()["error"] and "PATH_MAPPINGS" in response.json()["error"]
    assert len(all_jobs(service)) == before


def test_a_missing_file_is_404_naming_both_paths(service: LiveService, library: Path) -> None:
    payload = jellyfin_all_properties("ItemAdded", str(uuid.uuid4()), "Movie", "Gone", path="/data/movies/Gone.mkv")
    response = post(service, "jellyfin", json=payload)
    assert response.status_code == 404, response.text
    error = response.json()["error"]
    assert str(library / "movies" / "Gone.mkv") in error and "/data/movies/Gone.mkv" in error


def test_media_server_failures_are_502_or_404_with_the_reason(
    service: LiveService, fakes: dict[str, FakeMediaServer]
) -> None:
    jellyfin = fakes["jellyfin"]
    payload = jellyfin_template("ItemAdded", str(uuid.uuid4()), "Movie", "Unknown")
    unknown = post(service, "jellyfin", json=payload)
    assert unknown.status_code == 404 and "has no item" in unknown.json()["error"]
    try:
        jellyfin.answer_with = 500
        down = post(service, "jellyfin", json=payload)
        assert down.status_code == 502 and "500" in down.json()["error"]
        jellyfin.answer_with = 401
        refused = post(service, "jellyfin", json=payload)
        assert refused.status_code == 502 and "JELLYFIN_API_KEY" in refused.json()["error"]
    finally:
        jellyfin.answer_with = None


def test_unconfigured_servers_events_off_and_a_server_that_is_down(tmp_path: Path, movie: Path) -> None:
    settings = library_settings(
        tmp_path, webhook_events="added", plex_url=f"http://127.0.0.1:{free_port()}", plex_token=TOKEN
    )
    with LiveService(settings, workers=False) as live:
        played = post(live, "jellyfin", json=jellyfin_all_properties("PlaybackStart", str(uuid.uuid4()), "Movie", "x"))
        assert played.status_code == 200 and "WEBHOOK_EVENTS=added" in played.json()["ignored"]
        no_path = post(live, "jellyfin", json=jellyfin_template("ItemAdded", str(uuid.uuid4()), "Movie", "x"))
        assert no_path.status_code == 503 and "JELLYFIN_URL" in no_path.json()["error"]
        series = post(live, "emby", json=emby_event("library.new", {"Name": "S", "Id": "3", "Type": "Series"}))
        assert series.status_code == 200 and "EMBY_URL" in series.json()["ignored"]
        payload = plex_event("library.new", {"ratingKey": "1", "type": "movie", "title": "x"})
        down = post(live, "plex", files=plex_multipart(payload))
        assert down.status_code == 502 and "cannot reach Plex" in down.json()["error"]
        assert "PLEX_URL" in down.json()["error"]
        assert all_jobs(live) == []


def test_provider_only_mode_queues_by_the_same_library_rules(tmp_path: Path, movie: Path) -> None:
    """No library runs in provider mode; a webhook's file is still decided by LIBRARY_PATHS' rules."""
    settings = library_settings(tmp_path, transcriptarr_mode="provider")
    local = place(movie, settings.library_paths[0], "movies/Solo (2018)/Solo (2018).mkv")
    with LiveService(settings, workers=False) as live:
        assert live.parts.library is None
        payload = jellyfin_all_properties("ItemAdded", str(uuid.uuid4()), "Movie", "Solo", path=str(local))
        assert_handled(post(live, "jellyfin", json=payload), queued=True)
        [job] = jobs_for(live, local)
        assert job.source == Source.WEBHOOK


# --------------------------------------------------------------------------- the refresh after the subtitle


def finished_job(server: str, item_id: str, state: JobState = JobState.COMPLETED, **details: Any) -> Job:
    webhook = {"server": server, "item_id": item_id, "kind": "added", "title": "x"}
    return job_from_values(
        {"id": 7, "state": state, "media_path": "/media/x.mkv", "details": {"webhook": webhook, **details}}
    )


async def perform(refresh: MediaServerRefresh, job: Job) -> None:
    """What the follow-up runner does with the stored plan (integrations/followups.py)."""
    await refresh.perform(refresh.plan(job).data, Attempt(1, job.id, job.media_path))


def refresh_for(tmp_path: Path, **settings: Any) -> MediaServerRefresh:
    refresh = refresh_from_settings(engine_settings(tmp_path, **settings))
    assert isinstance(refresh, MediaServerRefresh)
    return refresh


@pytest.mark.parametrize("kind", ["jellyfin", "emby", "plex"])
async def test_refresh_asks_the_server_to_look_at_the_item_again(tmp_path: Path, kind: str) -> None:
    item = {"jellyfin": uuid.uuid4().hex, "emby": "31337", "plex": "4242"}[kind]
    key = {"jellyfin": "jellyfin_api_key", "emby": "emby_api_key", "plex": "plex_token"}[kind]
    with FakeMediaServer(kind) as fake:  # type: ignore[arg-type]
        fake.add(FakeItem(item, "Movie", "x", "/data/x.mkv"))
        refresh = refresh_for(tmp_path, **{f"{kind}_url": fake.url, key: TOKEN})
        job = finished_job(kind, item)
        assert refresh.wants(job)
        await perform(refresh, job)
        assert fake.refreshed == [item.lower()]
        [(method, path, query, _)] = fake.calls
    expected = {
        "jellyfin": ("POST", f"/Items/{item}/Refresh"),
        "emby": ("POST", f"/emby/Items/{item}/Refresh"),
        "plex": ("PUT", f"/library/metadata/{item}/refresh"),
    }[kind]
    assert (method, path) == expected
    if kind != "plex":
        assert query["metadatarefreshmode"] == "Default" and query["replaceallmetadata"] == "false"


async def test_refresh_with_a_wrong_key_is_not_retried(tmp_path: Path) -> None:
    with FakeMediaServer("jellyfin", token="the-right-one") as fake:
        refresh = refresh_for(tmp_path, jellyfin_url=fake.url, jellyfin_api_key="a-wrong-one")
        with pytest.raises(FollowUpError) as caught:
            await perform(refresh, finished_job("jellyfin", uuid.uuid4().hex))
    assert caught.value.retry is False
    assert "JELLYFIN_API_KEY" in str(caught.value)


async def test_refresh_of_a_server_that_is_down_is_retried(tmp_path: Path) -> None:
    refresh = refresh_for(tmp_path, plex_url=f"http://127.0.0.1:{free_port()}", plex_token=TOKEN)
    with pytest.raises(FollowUpError) as caught:
        await perform(refresh, finished_job("plex", "1"))
    assert caught.value.retry is True
    assert "PLEX_URL" in str(caught.value)


def test_refresh_is_only_for_completed_webhook_jobs_of_configured_servers(tmp_path: Path) -> None:
    refresh = refresh_for(tmp_path, jellyfin_url="http://jellyfin:8096", jellyfin_api_key=TOKEN)
    assert refresh.wants(finished_job("jellyfin", "abc"))
    assert not refresh.wants(finished_job("jellyfin", "abc", JobState.FAILED))
    assert not refresh.wants(finished_job("jellyfin", "abc", skipped="a subtitle appeared meanwhile"))
    assert not refresh.wants(finished_job("plex", "1"))  # Plex is not configured
    assert not refresh.wants(job_from_values({"id": 8, "state": JobState.COMPLETED, "details": {}}))
    assert refresh_from_settings(engine_settings(tmp_path)) is None  # no media server
    off = engine_settings(tmp_path, plex_url="http://plex:32400", plex_token=TOKEN, media_server_refresh=False)
    assert refresh_from_settings(off) is None


def test_end_to_end_webhook_subtitle_refresh(tmp_path: Path) -> None:
    """Jellyfin says a film was added; the real service transcribes it and tells Jellyfin to refresh it."""
    base = tmp_path / "media"
    base.mkdir()
    film = make_video(base / "film.mkv", [(fixture_path("jfk.flac"), "eng", True)])
    with FakeMediaServer("jellyfin") as jellyfin:
        settings = library_settings(tmp_path, jellyfin_url=jellyfin.url, jellyfin_api_key=TOKEN)
        local = place(film, settings.library_paths[0], "movies/JFK (1961)/JFK (1961).mkv")
        item = str(uuid.uuid4())
        jellyfin.add(FakeItem(item, "Movie", "JFK", "/data/movies/JFK (1961)/JFK (1961).mkv"))
        with LiveService(settings) as live:
            payload = jellyfin_all_properties(
                "ItemAdded", item, "Movie", "JFK", path="/data/movies/JFK (1961)/JFK (1961).mkv"
            )
            job_id = assert_handled(post(live, "jellyfin", json=payload), queued=True)["job_id"]
            job = wait_for(lambda: finished(live, job_id), timeout=120)
            assert job.state == JobState.COMPLETED, job.error
            assert jellyfin.wait_for_refresh(item), jellyfin.calls
    assert job.result_path is not None
    subtitle = Path(job.result_path)
    assert subtitle.parent == local.parent and subtitle.suffix == ".srt"
    assert "ask not what your country can do for you" in normalise(subtitle.read_text(encoding="utf-8"))


def finished(live: LiveService, job_id: int) -> Job | None:
    job = live.call(lambda parts: parts.queue.get(job_id))
    return job if job.state in FINISHED_STATES else None
