"""PLEX_QUEUE_AHEAD (SubGen's PLEX_QUEUE_NEXT_EPISODE/SEASON/SERIES) over real loopback HTTP.

A Plex webhook for an episode queues it, and then the episodes after it that the setting asks
for, looked up in a fake Plex (fake_mediaserver.py) the way Plex answers: the episode's
metadata names its show, the show's `allLeaves` its episodes with season and episode numbers.
The library's rules still decide each file (ffprobe on real files).
"""

from __future__ import annotations

from collections.abc import Iterator, MutableMapping
from pathlib import Path
from typing import Any

import pytest
import requests
from structlog.testing import capture_logs

from tests.api.live import LiveService
from tests.integrations.fake_mediaserver import TOKEN, FakeItem, FakeMediaServer
from tests.integrations.test_subgen_routes import PLEX_AGENT
from tests.integrations.test_webhooks import (
    KEY,
    all_jobs,
    library_settings,
    place,
    plex_event,
    plex_multipart,
    post,
)
from tests.polling import wait_until
from transcriptarr.db.models import Job
from transcriptarr.integrations.mediaservers.queue_ahead import QueueAhead
from transcriptarr.queue.claim_order import in_claim_order

SHOW = "900"
# (rating key, season, episode): a special, two seasons, and a gap where S02E02 is missing.
EPISODES = [("901", 0, 1), ("911", 1, 1), ("912", 1, 2), ("913", 1, 3), ("921", 2, 1), ("923", 2, 3)]


def episode_file(season: int, episode: int) -> str:
    return f"tv/Dark/Season {season:02d}/Dark - S{season:02d}E{episode:02d}.mkv"


@pytest.fixture
def plex() -> Iterator[FakeMediaServer]:
    with FakeMediaServer("plex") as server:
        server.add(FakeItem(SHOW, "show", "Dark"))
        for key, season, episode in EPISODES:
            sees = "/data/" + episode_file(season, episode)  # the path Plex sees: PATH_MAPPINGS maps it
            server.add(FakeItem(key, "episode", f"E{episode}", sees, (SHOW,), "Dark", (season, episode)))
        yield server


def running(tmp_path: Path, plex: FakeMediaServer, movie: Path, scope: QueueAhead) -> LiveService:
    settings = library_settings(tmp_path, plex_url=plex.url, plex_token=TOKEN, plex_queue_ahead=scope)
    library = settings.library_paths[0]
    for _, season, episode in EPISODES:
        place(movie, library, episode_file(season, episode))
    return LiveService(settings, workers=False)


def play(service: LiveService, key: str, event: str = "media.play") -> None:
    payload = plex_event(event, {"ratingKey": key, "type": "episode", "title": "Dark", "grandparentTitle": "Dark"})
    response = post(service, "plex", files=plex_multipart(payload))
    assert response.status_code == 202 and response.json()["queued"] is True, response.text


def queued_keys(service: LiveService, count: int) -> list[str]:
    """The webhook items of the queued jobs in claim order, once there are `count` of them."""
    jobs: list[Job] = []

    def enough() -> bool:
        jobs[:] = all_jobs(service)
        return len(jobs) >= count

    wait_until(enough, f"{count} jobs", 30)
    return [job.details["webhook"]["item_id"] for job in in_claim_order(jobs)]


def logged(logs: list[MutableMapping[str, Any]], event: str) -> MutableMapping[str, Any]:
    """Wait for the service (in a thread of this process) to log `event`; the entry."""
    wait_until(lambda: any(entry["event"] == event for entry in logs), event, 30)
    return next(entry for entry in logs if entry["event"] == event)


@pytest.mark.parametrize(
    ("scope", "played", "expected"),
    [
        ("next-episode", "912", ["912", "913"]),
        ("next-episode", "913", ["913", "921"]),  # the last of a season: the next season's first
        ("next-episode", "921", ["921", "923"]),  # S02E02 is missing: the next there is
        ("season", "911", ["911", "912", "913"]),
        ("series", "912", ["912", "913", "921", "923"]),  # never the special (season 0)
        ("series", "923", ["923"]),  # the last episode: nothing after it
    ],
)
def test_a_played_episode_queues_the_episodes_after_it_in_viewing_order(
    tmp_path: Path, plex: FakeMediaServer, movie: Path, scope: QueueAhead, played: str, expected: list[str]
) -> None:
    with capture_logs() as logs, running(tmp_path, plex, movie, scope) as service:
        play(service, played)
        done = logged(logs, "webhook_queued_ahead")
        assert (done["scope"], done["files"], done["queued"]) == (scope, len(expected) - 1, len(expected) - 1)
        assert queued_keys(service, len(expected)) == expected


def test_an_added_episode_queues_ahead_too_as_subgen_does(tmp_path: Path, plex: FakeMediaServer, movie: Path) -> None:
    with capture_logs() as logs, running(tmp_path, plex, movie, "next-episode") as service:
        play(service, "911", event="library.new")
        logged(logs, "webhook_queued_ahead")
        assert queued_keys(service, 2) == ["911", "912"]


def test_subgens_plex_url_queues_ahead_too(tmp_path: Path, plex: FakeMediaServer, movie: Path) -> None:
    """A SubGen user's Plex webhook (`/plex`) and PLEX_QUEUE_NEXT_EPISODE, unchanged."""
    payload = plex_event("media.play", {"ratingKey": "913", "type": "episode", "title": "Dark"})
    with capture_logs() as logs, running(tmp_path, plex, movie, "next-episode") as service:
        response = requests.post(
            f"{service.url}/plex", params={"apikey": KEY}, headers=PLEX_AGENT, files=plex_multipart(payload), timeout=60
        )
        assert response.status_code == 202, response.text
        logged(logs, "webhook_queued_ahead")
        assert queued_keys(service, 2) == ["913", "921"]


def test_off_queues_only_the_episode(tmp_path: Path, plex: FakeMediaServer, movie: Path) -> None:
    with running(tmp_path, plex, movie, "off") as service:
        play(service, "911")
        assert queued_keys(service, 1) == ["911"]
        assert not [call for call in plex.calls if call[1].endswith("/allLeaves")], "Plex was asked for the show"


def test_plex_failing_the_look_up_leaves_the_played_episode_queued(
    tmp_path: Path, plex: FakeMediaServer, movie: Path
) -> None:
    with capture_logs() as logs, running(tmp_path, plex, movie, "series") as service:
        plex.items.pop(SHOW)  # the show's episodes cannot be listed: Plex answers 404
        play(service, "911")
        failed = logged(logs, "webhook_queue_ahead_failed")
        assert failed["item_id"] == "911" and "900" in failed["error"], failed
        assert queued_keys(service, 1) == ["911"]
