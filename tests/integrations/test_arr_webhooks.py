"""Sonarr's and Radarr's Webhook connection over real loopback HTTP: their payloads in, jobs queued or dropped.

The payloads (tests/integrations/payloads/) are built from Sonarr's and Radarr's own
payload classes; paths in them are as Sonarr sees them (/tv, /movies) and reach the
temporary library through PATH_MAPPINGS. A real service (SQLite queue, the library's
rules with ffprobe on real files) runs in a thread, without workers, so queued jobs stay queued.
"""

from __future__ import annotations

import copy
import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.acceptance.engine_harness import engine_settings
from tests.api.live import LiveService
from tests.integrations.test_webhooks import wait_for
from transcriptarr.db.models import Job, JobState, Source
from transcriptarr.integrations.arr import ArrEvent, ArrTest, join, parse_webhook
from transcriptarr.integrations.mediaservers.events import Ignored, PayloadError
from transcriptarr.queue.jobqueue import NewJob
from transcriptarr.queue.keys import SOURCE_PRIORITY

KEY = "arr-key"
PAYLOADS = Path(__file__).parent / "payloads"


def payload(name: str) -> dict[str, Any]:
    return dict(json.loads((PAYLOADS / name).read_text(encoding="utf-8")))


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveService]:
    tmp = tmp_path_factory.mktemp("arr")
    library = tmp / "library"
    for folder in ("tv", "movies"):
        (library / folder).mkdir(parents=True)
    settings = engine_settings(
        tmp,
        transcriptarr_mode="standalone",
        library_paths=str(library),
        library_min_duration_seconds=0,
        library_scan_on_startup=False,
        api_key=KEY,
        # Sonarr in a container (/tv), Radarr too (/movies), and a Sonarr on Windows.
        path_mappings=f"/tv:{library}/tv|/movies:{library}/movies|D:\\TV:{library}/tv",
    )
    with LiveService(settings, workers=False) as live:
        yield live


@pytest.fixture
def library(service: LiveService) -> Path:
    return service.settings.library_paths[0]


def place(movie: Path, library: Path, sent: str) -> Path:
    """A copy of the test video where Sonarr's path `sent` (/tv/..., /movies/...) lands."""
    dest = library / sent.lstrip("/")
    dest.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(movie, dest)
    return dest


def post(
    service: LiveService, app: str, body: Any, *, key: str | None = KEY, method: str = "POST"
) -> requests.Response:
    # As Sonarr's WebhookProxy sends it: JSON, Accept JSON, the key in a header set under Headers (advanced).
    headers = {"Accept": "application/json", **({"X-Api-Key": key} if key is not None else {})}
    return requests.request(method, f"{service.url}/webhooks/{app}", json=body, headers=headers, timeout=60)


def jobs_for(service: LiveService, path: Path) -> list[Job]:
    jobs = service.call(lambda parts: parts.queue.list_jobs(limit=500))
    return [job for job in jobs if job.media_path == str(path)]


def live_for(service: LiveService, path: Path) -> list[Job]:
    return [job for job in jobs_for(service, path) if job.state in (JobState.QUEUED, JobState.PROCESSING)]


def scan_job(service: LiveService, path: Path, priority: int = 150) -> Job:
    """A job the library's scan queued for `path` before Sonarr touched it."""
    new = NewJob(source=Source.SCAN, media_path=str(path), priority=priority, details={"reason": "no subtitles"})
    return service.call(lambda parts: parts.queue.enqueue(new)).job


def handled(response: requests.Response) -> dict[str, Any]:
    assert response.status_code == 202, response.text
    return dict(response.json())


# --------------------------------------------------------------------------- On Import, On Upgrade


def test_sonarr_on_import_queues_the_mapped_file_at_webhook_priority(
    service: LiveService, library: Path, movie: Path
) -> None:
    event = payload("sonarr_download.json")
    local = place(movie, library, event["episodeFile"]["path"])
    body = handled(post(service, "sonarr", event))
    assert body["queued"] is True and body["path"] == str(local)
    [job] = jobs_for(service, local)
    assert body["job_id"] == job.id and job.state == JobState.QUEUED
    assert job.source == Source.WEBHOOK
    assert SOURCE_PRIORITY[Source.WEBHOOK] <= job.priority < SOURCE_PRIORITY[Source.BAZARR]
    webhook = job.details["webhook"]
    assert (webhook["server"], webhook["item_id"], webhook["kind"]) == ("sonarr", "501", "import")
    assert webhook["title"] == "Severance (2022)"
    again = handled(post(service, "sonarr", event))  # On Import and On Import Complete both ticked
    assert again["queued"] is False and again["job_id"] == job.id


def test_a_file_named_only_by_series_path_and_relative_path(service: LiveService, library: Path, movie: Path) -> None:
    """Older Sonarr versions send no episodeFile.path: series.path + relativePath, with a Windows separator."""
    event = payload("sonarr_download.json")
    del event["episodeFile"]["path"]
    event["series"]["path"] = "D:\\TV\\Severance"
    event["episodeFile"]["relativePath"] = "Season 01\\Severance - S01E09 - The We We Are.mkv"
    local = place(movie, library, "tv/Severance/Season 01/Severance - S01E09 - The We We Are.mkv")
    body = handled(post(service, "sonarr", event))
    assert body["queued"] is True and body["path"] == str(local)


def test_radarr_on_import_queues_the_movie(service: LiveService, library: Path, movie: Path) -> None:
    event = payload("radarr_download.json")
    local = place(movie, library, event["movieFile"]["path"])
    body = handled(post(service, "radarr", event))
    [job] = jobs_for(service, local)
    assert body["job_id"] == job.id and job.source == Source.WEBHOOK
    assert job.details["webhook"] == {"server": "radarr", "item_id": "301", "kind": "import", "title": "Heat (1995)"}


def test_an_upgrade_drops_the_replaced_files_jobs_and_queues_the_new_file(
    service: LiveService, library: Path, movie: Path
) -> None:
    event = payload("sonarr_upgrade.json")
    old = place(movie, library, event["deletedFiles"][0]["path"])
    old_job = scan_job(service, old)
    old.unlink()  # Sonarr moved it to its recycle bin
    new = place(movie, library, event["episodeFile"]["path"])
    body = handled(post(service, "sonarr", event))
    assert body["queued"] is True and body["path"] == str(new)
    assert body["dropped"] == [
        {"path": str(old), "job_ids": [old_job.id], "priority": 150, "reason": body["dropped"][0]["reason"]}
    ]
    [cancelled] = jobs_for(service, old)
    assert cancelled.state == JobState.CANCELLED and "is gone" in (cancelled.error or "")
    [job] = jobs_for(service, new)
    assert job.details["webhook"]["kind"] == "upgrade" and job.state == JobState.QUEUED


def test_an_upgrade_under_the_same_name_keeps_the_files_job(service: LiveService, library: Path, movie: Path) -> None:
    event = payload("sonarr_upgrade.json")
    same = "/tv/Severance/Season 01/Severance - S01E07 - Defiant Jazz.mkv"
    event["episodeFile"]["path"] = event["deletedFiles"][0]["path"] = same
    local = place(movie, library, same)
    queued = scan_job(service, local)
    body = handled(post(service, "sonarr", event))
    assert body["dropped"][0]["job_ids"] == [] and "holds a file again" in body["dropped"][0]["reason"]
    [job] = live_for(service, local)
    assert job.id == queued.id and job.priority >= SOURCE_PRIORITY[Source.WEBHOOK]  # moved up, not dropped


# --------------------------------------------------------------------------- On Rename


def test_sonarr_rename_moves_the_jobs_to_the_new_paths_keeping_their_priority(
    service: LiveService, library: Path, movie: Path
) -> None:
    event = payload("sonarr_rename.json")
    files = event["renamedEpisodeFiles"]
    olds = [place(movie, library, f["previousPath"]) for f in files]
    old_jobs = [scan_job(service, old, priority=140 + n) for n, old in enumerate(olds)]
    news = []
    for old, f in zip(olds, files, strict=True):
        news.append(library / f["path"].lstrip("/"))
        old.rename(news[-1])
    body = handled(post(service, "sonarr", event))
    assert body["files"] == 2 and "background" in body["reason"]
    assert sorted(i for d in body["dropped"] for i in d["job_ids"]) == sorted(j.id for j in old_jobs)
    for old in olds:
        assert live_for(service, old) == []
    for n, new in enumerate(news):
        [job] = wait_for(lambda new=new: live_for(service, new))
        assert job.priority == 140 + n  # the jobs follow the file; a rename is no reason to jump the queue
        assert job.details["webhook"]["kind"] == "rename"


def test_radarr_rename_of_a_file_without_jobs_decides_the_new_path(
    service: LiveService, library: Path, movie: Path
) -> None:
    event = payload("radarr_rename.json")
    [renamed] = event["renamedMovieFiles"]
    new = place(movie, library, renamed["path"])
    body = handled(post(service, "radarr", event))
    assert body["queued"] is True and body["path"] == str(new)
    assert body["dropped"][0]["job_ids"] == []
    [job] = jobs_for(service, new)
    assert job.priority >= SOURCE_PRIORITY[Source.WEBHOOK]


def test_a_rename_the_watcher_already_followed_leaves_the_job_as_it_is(
    service: LiveService, library: Path, movie: Path
) -> None:
    event = payload("radarr_rename.json")
    [renamed] = event["renamedMovieFiles"]
    renamed["previousPath"] = "/movies/Ronin (1998)/Ronin.old.mkv"
    renamed["path"] = "/movies/Ronin (1998)/Ronin (1998) Remux-1080p.mkv"
    new = place(movie, library, renamed["path"])
    followed = scan_job(service, new, priority=160)  # the watcher saw the move first: the job followed the file
    body = handled(post(service, "radarr", event))
    assert body["queued"] is False and body["job_id"] == followed.id and "followed the rename" in body["reason"]
    [job] = live_for(service, new)
    assert job.priority == 160


# --------------------------------------------------------------------------- On File Delete, series/movie deleted


@pytest.mark.parametrize("name", ["sonarr_episode_file_delete.json", "radarr_movie_file_delete.json"])
def test_a_deleted_file_has_its_queued_jobs_dropped(
    service: LiveService, library: Path, movie: Path, name: str
) -> None:
    event = payload(name)
    app = name.split("_")[0]
    sent = (event.get("episodeFile") or event["movieFile"])["path"]
    local = place(movie, library, sent)
    queued = scan_job(service, local)
    local.unlink()
    body = handled(post(service, app, event))
    assert body["queued"] is False and body["job_id"] is None
    assert body["dropped"][0]["job_ids"] == [queued.id] and "1 job(s) dropped" in body["reason"]
    [job] = jobs_for(service, local)
    assert job.state == JobState.CANCELLED


@pytest.mark.parametrize("name", ["sonarr_series_delete.json", "radarr_movie_delete.json"])
def test_a_series_or_movie_deleted_with_its_files_drops_every_job_under_its_folder(
    service: LiveService, library: Path, movie: Path, name: str
) -> None:
    event = payload(name)
    app = name.split("_")[0]
    folder = (event.get("series") or event["movie"]).get("path") or event["movie"]["folderPath"]
    locals_ = [place(movie, library, f"{folder}/Season 01/E0{n}.mkv") for n in (1, 2)]
    neighbour = place(movie, library, f"{folder} 2/E01.mkv")  # a folder whose name starts the same: not under it
    jobs = [scan_job(service, local) for local in [*locals_, neighbour]]
    shutil.rmtree(locals_[0].parent.parent)
    body = handled(post(service, app, event))
    assert sorted(body["dropped"][0]["job_ids"]) == sorted(job.id for job in jobs[:2])
    assert [job.id for job in live_for(service, neighbour)] == [jobs[2].id]
    kept = copy.deepcopy(event)
    kept["deletedFiles"] = False
    answer = post(service, app, kept)
    assert answer.status_code == 200 and "kept the files" in answer.json()["ignored"]


# --------------------------------------------------------------------------- Test, other events, methods, keys


@pytest.mark.parametrize("app", ["sonarr", "radarr"])
def test_the_test_button_is_answered_200_and_a_wrong_key_401(service: LiveService, app: str) -> None:
    event = payload(f"{app}_test.json")
    ok = post(service, app, event)
    assert ok.status_code == 200 and "reached Transcriptarr" in ok.json()["test"]
    for key in (None, "wrong"):
        refused = post(service, app, event, key=key)
        assert refused.status_code == 401 and "API key" in refused.json()["error"]
    in_url = requests.post(f"{service.url}/webhooks/{app}", params={"apikey": KEY}, json=event, timeout=30)
    assert in_url.status_code == 200  # Sonarr v3 has no headers: the key in the URL


def test_put_is_taken_like_post(service: LiveService) -> None:
    """The connection's Method may be PUT."""
    assert post(service, "radarr", payload("radarr_test.json"), method="PUT").status_code == 200


def test_events_of_no_interest_are_answered_200_and_queue_nothing(service: LiveService) -> None:
    before = len(service.call(lambda parts: parts.queue.list_jobs(limit=500)))
    for event in (
        payload("sonarr_grab.json"),
        {"eventType": "Health", "instanceName": "Sonarr", "level": "warning", "message": "Indexers unavailable"},
        {
            "eventType": "ApplicationUpdate",
            "instanceName": "Sonarr",
            "previousVersion": "4.0.9",
            "newVersion": "4.0.10",
        },
    ):
        response = post(service, "sonarr", event)
        assert response.status_code == 200, response.text
        assert "not handled" in response.json()["ignored"]
    assert len(service.call(lambda parts: parts.queue.list_jobs(limit=500))) == before


MALFORMED: list[tuple[str, dict[str, Any], str]] = [
    ("sonarr", {"data": b"{not json", "headers": {"Content-Type": "application/json"}}, "not JSON"),
    ("sonarr", {"json": {"series": {"title": "x"}}}, "eventType"),
    ("sonarr", {"json": payload("radarr_download.json")}, "point Radarr at /webhooks/radarr"),
    ("radarr", {"json": payload("sonarr_download.json")}, "point Sonarr at /webhooks/sonarr"),
    ("sonarr", {"json": {"eventType": "Download", "series": {"path": "/tv/x"}}}, "episodeFile"),
    ("radarr", {"json": {"eventType": "Download", "movie": {}, "movieFile": {"relativePath": "x.mkv"}}}, "folderPath"),
    ("sonarr", {"json": {"eventType": "Rename", "series": {"path": "/tv/x"}}}, "renamedEpisodeFiles"),
    (
        "sonarr",
        {"json": {"eventType": "Rename", "series": {}, "renamedEpisodeFiles": [{"path": "/tv/x/a.mkv"}]}},
        "previousPath",
    ),
]


@pytest.mark.parametrize(("app", "body", "words"), MALFORMED, ids=[f"{a}-{i}" for i, (a, _, _) in enumerate(MALFORMED)])
def test_malformed_bodies_are_400_with_a_reason(
    service: LiveService, app: str, body: dict[str, Any], words: str
) -> None:
    headers = {"X-Api-Key": KEY, **body.pop("headers", {})}
    response = requests.post(f"{service.url}/webhooks/{app}", headers=headers, timeout=30, **body)
    assert response.status_code == 400, response.text
    assert words in response.json()["error"]


def test_outside_the_libraries_403_and_a_missing_file_404(service: LiveService, library: Path) -> None:
    outside = payload("radarr_download.json")
    outside["movieFile"]["path"] = "/elsewhere/Heat (1995)/Heat.mkv"
    refused = post(service, "radarr", outside)
    assert refused.status_code == 403 and "PATH_MAPPINGS" in refused.json()["error"]
    missing = payload("radarr_download.json")
    missing["movieFile"]["path"] = "/movies/Gone (2001)/Gone.mkv"
    gone = post(service, "radarr", missing)
    assert gone.status_code == 404
    assert str(library / "movies" / "Gone (2001)" / "Gone.mkv") in gone.json()["error"]
    delete = payload("radarr_movie_file_delete.json")
    delete["movieFile"]["path"] = "/elsewhere/Alien.mkv"
    assert post(service, "radarr", delete).status_code == 403


# --------------------------------------------------------------------------- the parser alone


def test_parser_reads_each_event_kind() -> None:
    download = parse_webhook("sonarr", payload("sonarr_download.json"))
    assert isinstance(download, ArrEvent) and download.kind == "import" and download.gone == ()
    upgrade = parse_webhook("sonarr", payload("sonarr_upgrade.json"))
    assert isinstance(upgrade, ArrEvent) and upgrade.kind == "upgrade" and len(upgrade.gone) == 1
    rename = parse_webhook("radarr", payload("radarr_rename.json"))
    assert isinstance(rename, ArrEvent) and rename.files[0].previous == rename.gone[0]
    assert isinstance(parse_webhook("sonarr", payload("sonarr_test.json")), ArrTest)
    assert isinstance(parse_webhook("sonarr", payload("sonarr_grab.json")), Ignored)
    complete = payload("sonarr_download.json")  # On Import Complete: a list of files
    complete["episodeFiles"] = [complete.pop("episodeFile")] * 2
    parsed = parse_webhook("sonarr", complete)
    assert isinstance(parsed, ArrEvent) and len(parsed.files) == 2
    with pytest.raises(PayloadError, match="eventType"):
        parse_webhook("radarr", {})


@pytest.mark.parametrize(
    ("folder", "relative", "joined"),
    [
        ("/tv/Show", "Season 01/E01.mkv", "/tv/Show/Season 01/E01.mkv"),
        ("/tv/Show/", "/Season 01/E01.mkv", "/tv/Show/Season 01/E01.mkv"),
        ("D:\\TV\\Show", "Season 01\\E01.mkv", "D:\\TV\\Show\\Season 01\\E01.mkv"),
        ("\\\\nas\\tv\\Show", "E01.mkv", "\\\\nas\\tv\\Show\\E01.mkv"),
    ],
)
def test_join_keeps_the_senders_separator(folder: str, relative: str, joined: str) -> None:
    assert join(folder, relative) == joined
