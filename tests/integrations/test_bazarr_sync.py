"""Bazarr's wanted lists in, jobs out, Bazarr told afterwards: against a strict fake Bazarr over loopback HTTP.

The queue is a real one on SQLite (the queue's own tests cover the other backends); one test runs the real
service parts with a real transcription.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable, MutableMapping, Sequence
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import structlog

from tests.integrations.fake_bazarr import FakeBazarr, lang
from tests.polling import eventually
from transcriptarr.db.database import Database
from transcriptarr.db.models import Job, JobState, Source, Task
from transcriptarr.integrations.bazarr_api import BazarrClient, BazarrConfigError, WantedLanguage
from transcriptarr.integrations.bazarr_followup import BazarrNotify, bazarr_followup_from_settings
from transcriptarr.integrations.bazarr_sync import (
    WANTED_PRIORITY,
    BazarrSync,
    SyncConfig,
    SyncReport,
    Wish,
    bazarr_sync_from_settings,
    plan_wanted,
)
from transcriptarr.integrations.followups import FollowUps
from transcriptarr.integrations.wiring import followup_actions
from transcriptarr.policy.paths import PathMapper
from transcriptarr.queue.followups import FollowUpStore
from transcriptarr.queue.jobqueue import JobQueue
from transcriptarr.settings import load_settings, to_async_url

BAZARR_TV = "/data/tv"
BAZARR_MOVIES = "/data/movies"
SRT = "1\n00:00:01,000 --> 00:00:02,500\nHello there.\n\n"


# --- fixtures and helpers ---------------------------------------------------------------------------------------


@pytest.fixture
async def queue(tmp_path: Path) -> AsyncIterator[JobQueue]:
    db = Database(to_async_url(f"sqlite:///{tmp_path / 'queue.db'}"))
    await db.upgrade()
    yield JobQueue(db)
    await db.close()


@pytest.fixture
async def bazarr() -> AsyncIterator[FakeBazarr]:
    async with FakeBazarr() as fake:
        yield fake


def video(tmp_path: Path, bazarr_path: str) -> Path:
    """The local copy of a file Bazarr names (by the test's PATH_MAPPINGS); a few bytes are enough to queue."""
    local = local_path(tmp_path, bazarr_path)
    local.parent.mkdir(parents=True, exist_ok=True)
    local.write_bytes(b"not really a video")
    return local


def local_path(tmp_path: Path, bazarr_path: str) -> Path:
    return Path(PathMapper.parse(mappings(tmp_path)).map(bazarr_path))


def mappings(tmp_path: Path) -> list[str]:
    return [f"{BAZARR_TV}:{tmp_path / 'tv'}", f"{BAZARR_MOVIES}:{tmp_path / 'movies'}"]


def make_sync(queue: JobQueue, bazarr: FakeBazarr, tmp_path: Path, **config: Any) -> BazarrSync:
    values: dict[str, Any] = {"url": bazarr.url, "api_key": bazarr.api_key, "first_pull_seconds": 0.0}
    values.update(config)
    return BazarrSync(queue, PathMapper.parse(mappings(tmp_path)), SyncConfig(**values))


EP1 = f"{BAZARR_TV}/Show/Season 1/Show - S01E01.mkv"
EP2 = f"{BAZARR_TV}/Show/Season 1/Show - S01E02.mkv"
EP3 = f"{BAZARR_TV}/Other/Other - S01E01.mkv"
UNKNOWN_AUDIO = f"{BAZARR_MOVIES}/Amélie (2001)/Amélie (2001).mkv"
BRAZIL = f"{BAZARR_MOVIES}/Cidade (2002)/Cidade (2002).mkv"
GONE = f"{BAZARR_MOVIES}/Gone (2001)/Gone (2001).mkv"


def stock(bazarr: FakeBazarr, tmp_path: Path) -> None:
    """A Bazarr whose wanted lists hold one of each case (9 wanted languages, 4 of them can be made)."""
    bazarr.add_episode(1, 101, EP1, audio=["en"], missing=[lang("en")])  # transcribe
    bazarr.add_episode(1, 102, EP2, audio=["ja"], missing=[lang("en"), lang("de")], number="1x2")  # translate; no
    bazarr.add_episode(2, 201, EP3, audio=["en"], missing=[lang("en", forced=True), lang("en", hi=True)])  # no, no
    bazarr.add_movie(7, UNKNOWN_AUDIO, audio=[], missing=[lang("fr")], title="Amélie")  # the worker detects
    bazarr.add_movie(8, BRAZIL, audio=["pb"], missing=[lang("pb"), lang("zt")], title="Cidade")  # pb yes; zt no
    bazarr.add_movie(9, GONE, audio=["en"], missing=[lang("en")], title="Gone")  # no such file here
    for path in (EP1, EP2, EP3, UNKNOWN_AUDIO, BRAZIL):
        video(tmp_path, path)


async def jobs_by_path(queue: JobQueue) -> dict[str, Job]:
    return {str(job.media_path): job for job in await queue.list_jobs(limit=1000)}


async def wait_until(condition: Callable[[], bool], seconds: float = 20.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"not true within {seconds} s")
        await asyncio.sleep(0.02)


async def finish(queue: JobQueue, job: Job, *, subtitle: str | None) -> Job:
    """Play the worker: claim the job and complete it, with a written subtitle file or skipped (None)."""
    claimed = await queue.claim("test-worker", "test-node", limit=100)
    assert job.id in [c.id for c in claimed]
    result_path = None
    if subtitle is not None:
        result = Path(str(job.media_path)).with_suffix(f".{subtitle}.srt")
        result.write_text(SRT, encoding="utf-8")
        result_path = str(result)
    assert await queue.complete(job.id, "test-worker", result_path=result_path)
    for other in claimed:
        if other.id != job.id:
            await queue.release(other.id, "test-worker")
    return await queue.get(job.id)


def events(logs: Sequence[MutableMapping[str, Any]], name: str) -> list[MutableMapping[str, Any]]:
    return [entry for entry in logs if entry["event"] == name]


# --- what is queued -------------------------------------------------------------------------------------------


async def test_wanted_episodes_and_movies_are_queued_with_mapped_paths_and_the_right_task(
    queue: JobQueue, bazarr: FakeBazarr, tmp_path: Path
) -> None:
    stock(bazarr, tmp_path)
    with structlog.testing.capture_logs() as logs:
        report = await make_sync(queue, bazarr, tmp_path).pull_once()

    jobs = await jobs_by_path(queue)
    assert sorted(jobs) == sorted(str(local_path(tmp_path, p)) for p in (EP1, EP2, UNKNOWN_AUDIO, BRAZIL))
    expected = {  # path: (task, target, audio language, Bazarr's details)
        EP1: (Task.TRANSCRIBE, "en", "en", {"kind": "episode", "seriesid": 1, "episodeid": 101, "language": "en"}),
        EP2: (Task.TRANSLATE, "en", "ja", {"kind": "episode", "seriesid": 1, "episodeid": 102, "language": "en"}),
        UNKNOWN_AUDIO: (Task.TRANSCRIBE, "fr", None, {"kind": "movie", "radarrid": 7, "language": "fr"}),
        BRAZIL: (Task.TRANSCRIBE, "pt", "pt", {"kind": "movie", "radarrid": 8, "language": "pb"}),
    }
    for bazarr_path, (task, target, spoken, details) in expected.items():
        job = jobs[str(local_path(tmp_path, bazarr_path))]
        assert (job.task, job.target_language, job.source_language) == (task, target, spoken), bazarr_path
        assert job.source == Source.BAZARR and job.priority == WANTED_PRIORITY
        assert job.details["bazarr"] == {
            **details,
            "forced": False,
            "hi": False,
            "title": job.details["bazarr"]["title"],
        }
        assert job.details["found_by"] == "bazarr"

    assert (report.wanted, report.queued, report.unproducible, report.unresolved) == (9, 4, 4, 1)
    assert report.already_queued == report.already_done == report.failed_before == 0
    assert sorted(report.jobs) == sorted(job.id for job in jobs.values())
    [done] = events(logs, "bazarr_sync_done")
    assert {k: done[k] for k in ("wanted", "queued", "unproducible", "unresolved")} == {
        "wanted": 9,
        "queued": 4,
        "unproducible": 4,
        "unresolved": 1,
    }
    assert done["bazarr_version"] == "1.5.1"
    assert "not found here; check PATH_MAPPINGS" in done["unresolved_example"]
    queued = events(logs, "bazarr_job_queued")
    assert sorted(entry["job_id"] for entry in queued) == sorted(report.jobs)
    assert {entry["title"] for entry in queued} >= {"Amélie", "Cidade"}


async def test_what_cannot_be_made_or_found_is_skipped_with_a_reason(
    queue: JobQueue, bazarr: FakeBazarr, tmp_path: Path
) -> None:
    stock(bazarr, tmp_path)
    report = await make_sync(queue, bazarr, tmp_path).pull_once()

    reasons = {(s.item_id, s.language, s.category): s.reason for s in report.skipped}
    assert "cannot make de subtitles from ja audio" in reasons[(102, "de", "unproducible")]
    forced, hi = (s.reason for s in report.skipped if s.item_id == 201)
    assert "forced English subtitles wanted" in forced and "hearing-impaired English subtitles wanted" in hi
    assert "Traditional Chinese (zt)" in reasons[(8, "zt", "unproducible")]
    gone = reasons[(9, "en", "unresolved")]
    assert gone == f"{local_path(tmp_path, GONE)} (Bazarr: {GONE}) not found here; check PATH_MAPPINGS"
    assert sum(report.reasons.values()) == report.unproducible == 4


async def test_a_file_outside_library_paths_is_not_queued(queue: JobQueue, bazarr: FakeBazarr, tmp_path: Path) -> None:
    stock(bazarr, tmp_path)
    sync = make_sync(queue, bazarr, tmp_path, library_paths=(tmp_path / "tv",))
    report = await sync.pull_once()

    assert report.queued == 2  # the episodes; the movies are outside LIBRARY_PATHS
    outside = [s for s in report.skipped if s.item_id in (7, 8) and s.category == "unresolved"]
    assert len(outside) == 2
    assert all("is outside LIBRARY_PATHS" in s.reason for s in outside)


async def test_a_windows_path_without_a_mapping_says_to_add_one(
    queue: JobQueue, bazarr: FakeBazarr, tmp_path: Path
) -> None:
    bazarr.add_movie(4, "D:\\Movies\\Film (2020)\\Film (2020).mkv", audio=["en"], missing=[lang("en")])
    report = await make_sync(queue, bazarr, tmp_path).pull_once()

    [skipped] = report.skipped
    assert skipped.category == "unresolved"
    assert skipped.reason == (
        "Bazarr's path D:\\Movies\\Film (2020)\\Film (2020).mkv is no path on this machine; "
        "add a PATH_MAPPINGS entry for it"
    )


@pytest.mark.parametrize(
    ("wanted", "heard", "expected"),
    [
        (lang("en"), ["en"], Wish("en", Task.TRANSCRIBE, "en", "transcribe the English audio")),
        (lang("en"), ["ja"], Wish("en", Task.TRANSLATE, "ja", "translate the Japanese audio into English")),
        (lang("en"), ["ja", "en"], Wish("en", Task.TRANSCRIBE, "en", "transcribe the English audio")),
        (
            lang("de"),
            [],
            Wish("de", Task.TRANSCRIBE, None, "the worker detects the audio language (unknown to Bazarr)"),
        ),
        (lang("pt"), ["pb"], Wish("pt", Task.TRANSCRIBE, "pt", "transcribe the Portuguese audio")),
        (lang("en"), ["pb"], Wish("en", Task.TRANSLATE, "pt", "translate the Portuguese audio into English")),
        (lang("ea"), ["ea"], Wish("es", Task.TRANSCRIBE, "es", "transcribe the Latin American Spanish audio")),
        (lang("de"), ["en"], "cannot make de subtitles from en audio"),
        (lang("pb"), ["pt"], "so Transcriptarr makes pb only from audio Bazarr knows to be Brazilian Portuguese"),
        (lang("pb"), [], "the audio is unknown"),
        (lang("zt"), ["zh"], "Whisper mostly writes Simplified characters"),
        (lang("en", forced=True), ["en"], "forced English subtitles wanted"),
        (lang("en", hi=True), ["en"], "hearing-impaired English subtitles wanted"),
    ],
)
def test_plan_wanted_transcribes_translates_or_says_why_not(
    wanted: dict[str, Any], heard: list[str], expected: Wish | str
) -> None:
    language = WantedLanguage(wanted["code2"], wanted["name"], wanted["forced"], wanted["hi"])
    plan = plan_wanted(language, heard)
    if isinstance(expected, str):
        assert isinstance(plan, str) and expected in plan
    else:
        assert plan == expected


def test_a_translation_the_model_cannot_make_is_refused_before_anything_is_queued() -> None:
    english = WantedLanguage("en", "English", False, False)
    plan = plan_wanted(english, ["ja"], "bundled:tiny.en")
    assert isinstance(plan, str) and "tiny.en" in plan and "translat" in plan, plan
    assert isinstance(plan_wanted(english, ["ja"], "small"), Wish)  # a multilingual model translates


def test_the_sync_follows_the_library_rules_for_symlinks_and_the_model(tmp_path: Path) -> None:
    settings = load_settings(
        _env_file=None,
        bazarr_url="http://127.0.0.1:1",
        bazarr_api_key="k",
        library_follow_symlinks=False,
        whisper_model="bundled:tiny.en",
        database_url=f"sqlite:///{tmp_path / 'x.db'}",
    )
    config = SyncConfig.from_settings(settings)
    assert (config.follow_symlinks, config.model) == (False, "bundled:tiny.en")


def test_a_language_whisper_does_not_know_is_refused() -> None:
    plan = plan_wanted(WantedLanguage("tlh", "Klingon"), ["en"])
    assert plan == "Klingon (tlh) wanted: Whisper does not know this language"


async def test_a_wanted_list_longer_than_a_page_is_read_page_by_page(
    queue: JobQueue, bazarr: FakeBazarr, tmp_path: Path
) -> None:
    for number in range(1, 8):
        path = f"{BAZARR_TV}/Long/Long - S01E0{number}.mkv"
        bazarr.add_episode(3, 300 + number, path, audio=["en"], missing=[lang("en")], number=f"1x{number}")
        video(tmp_path, path)
    report = await make_sync(queue, bazarr, tmp_path, page_size=3, batch_size=2).pull_once()

    assert (report.wanted, report.queued) == (7, 7)
    pages = [dict(call.query) for call in bazarr.calls_to("GET", "/api/episodes/wanted")]
    assert pages == [{"start": "0", "length": "3"}, {"start": "3", "length": "3"}, {"start": "6", "length": "3"}]
    look_ups = [call.query for call in bazarr.calls_to("GET", "/api/episodes")]
    assert len(look_ups) == 4  # 7 ids, 2 per request
    assert all(name == "episodeid[]" for query in look_ups for name, _ in query)
    assert sorted(int(value) for query in look_ups for _, value in query) == list(range(301, 308))


# --- nothing twice --------------------------------------------------------------------------------------------


async def test_a_second_pull_queues_nothing_again_whatever_became_of_the_jobs(
    queue: JobQueue, bazarr: FakeBazarr, tmp_path: Path
) -> None:
    stock(bazarr, tmp_path)
    sync = make_sync(queue, bazarr, tmp_path)
    await sync.pull_once()
    again = await sync.pull_once()
    assert (again.queued, again.already_queued) == (0, 4)

    jobs = await jobs_by_path(queue)
    await queue.cancel(jobs[str(local_path(tmp_path, UNKNOWN_AUDIO))].id, "cancelled by hand")
    await finish(queue, jobs[str(local_path(tmp_path, EP1))], subtitle="en")  # written
    await finish(queue, jobs[str(local_path(tmp_path, EP2))], subtitle=None)  # skipped by the worker
    # Bazarr has not noticed anything (no scan-disk yet): it still wants all of it.
    third = await sync.pull_once()

    assert third.queued == 0
    by_item = {(s.item_id, s.language): s for s in third.skipped}
    assert by_item[(101, "en")].category == "already_done" and "exists" in by_item[(101, "en")].reason
    assert by_item[(102, "en")].category == "already_done" and "already completed" in by_item[(102, "en")].reason
    assert by_item[(7, "fr")].category == "failed_before"
    assert "transcriptarr retry" in by_item[(7, "fr")].reason
    assert by_item[(8, "pb")].category == "already_queued"
    assert len(await queue.list_jobs(limit=1000)) == 4


async def test_a_changed_file_is_queued_again_after_a_cancelled_job(
    queue: JobQueue, bazarr: FakeBazarr, tmp_path: Path
) -> None:
    bazarr.add_movie(7, UNKNOWN_AUDIO, audio=[], missing=[lang("fr")])
    local = video(tmp_path, UNKNOWN_AUDIO)
    sync = make_sync(queue, bazarr, tmp_path)
    [first] = (await sync.pull_once()).jobs
    await queue.cancel(first, "cancelled by hand")
    local.write_bytes(b"a better release of the film")  # Radarr upgraded it

    report = await sync.pull_once()
    assert report.queued == 1 and report.jobs != [first]


async def test_a_subtitle_already_next_to_the_video_is_not_transcribed_again(
    queue: JobQueue, bazarr: FakeBazarr, tmp_path: Path
) -> None:
    bazarr.add_episode(1, 101, EP1, audio=["en"], missing=[lang("en")])
    local = video(tmp_path, EP1)
    local.with_suffix(".en.srt").write_text(SRT, encoding="utf-8")

    report = await make_sync(queue, bazarr, tmp_path).pull_once()
    assert (report.queued, report.already_done) == (0, 1)
    assert await queue.list_jobs() == []


# --- Bazarr misconfigured -------------------------------------------------------------------------------------


async def test_a_wrong_api_key_is_logged_clearly_and_the_loop_keeps_running(
    queue: JobQueue, bazarr: FakeBazarr, tmp_path: Path
) -> None:
    stock(bazarr, tmp_path)
    sync = make_sync(queue, bazarr, tmp_path, api_key="wrong", interval_minutes=0.0005)
    stop = asyncio.Event()
    with structlog.testing.capture_logs() as logs:
        task = asyncio.create_task(sync.run(stop))
        await wait_until(lambda: len(events(logs, "bazarr_sync_failed")) >= 2)
        assert not task.done()  # the loop survives and tries again
        stop.set()
        await asyncio.wait_for(task, 10)

    failure = events(logs, "bazarr_sync_failed")[0]
    assert "refused the API key (HTTP 401)" in failure["error"] and "check BAZARR_API_KEY" in failure["error"]
    assert "wrong" not in failure["error"]  # the key itself is never logged
    assert await queue.list_jobs() == []


async def test_a_url_without_bazarrs_url_base_is_a_configuration_error(queue: JobQueue, tmp_path: Path) -> None:
    async with FakeBazarr(url_base="/bazarr") as bazarr:
        stock(bazarr, tmp_path)
        wrong = make_sync(queue, bazarr, tmp_path, url=bazarr.root)
        with pytest.raises(BazarrConfigError) as caught:
            await wrong.pull_once()
        assert "redirect" in str(caught.value) and "BAZARR_URL must include Bazarr's URL base" in str(caught.value)
        assert bazarr.calls == []  # nothing reached the API

        right = await make_sync(queue, bazarr, tmp_path).pull_once()
        assert right.queued == 4


async def test_check_tells_a_wrong_url_from_a_wrong_key(bazarr: FakeBazarr) -> None:
    async with BazarrClient(bazarr.url, bazarr.api_key) as client:
        assert await client.check() == "1.5.1"
    async with BazarrClient(bazarr.url, "wrong") as client:
        await client.ping()  # needs no key
        with pytest.raises(BazarrConfigError, match="check BAZARR_API_KEY"):
            await client.check()
    async with BazarrClient(bazarr.root + "/nowhere", bazarr.api_key) as client:
        with pytest.raises(BazarrConfigError, match="check BAZARR_URL"):
            await client.check()  # a 404 with JSON is not Bazarr's ping answer


async def test_the_fake_is_as_strict_as_bazarr(bazarr: FakeBazarr) -> None:
    bazarr.add_movie(5, "/m/Five.mkv", audio=["en"], missing=[lang("en")], title="Five")
    bazarr.add_movie(6, "/m/Six.mkv", audio=["en"], missing=[], title="Six")
    bazarr.add_episode(1, 11, "/tv/a.mkv", audio=["en"], missing=[lang("en")])
    headers = {"X-API-KEY": bazarr.api_key}
    async with aiohttp.ClientSession() as http:

        async def get(path: str, **options: Any) -> Any:
            async with http.get(bazarr.url + path, allow_redirects=False, **options) as response:
                return response.status, await response.json() if response.status == 200 else None

        assert await get("/api/system/ping") == (200, {"status": "OK"})
        assert (await get("/api/movies"))[0] == 401
        assert (await get("/api/movies", params={"apikey": bazarr.api_key}))[0] == 200
        _, plain = await get("/api/movies", params={"radarrid": "5"}, headers=headers)
        assert [m["radarrId"] for m in plain["data"]] == [5, 6]  # a plain `radarrid` is ignored
        _, array = await get("/api/movies", params={"radarrid[]": "5"}, headers=headers)
        assert [m["radarrId"] for m in array["data"]] == [5]
        _, paged = await get("/api/movies", params={"start": "1", "length": "0"}, headers=headers)
        assert len(paged["data"]) == 2 and paged["total"] == 2  # length 0: no paging
        _, bug = await get("/api/episodes/wanted", params={"episodeid[]": "11"}, headers=headers)
        assert bug == {"data": [], "total": 1}
        assert (await get("/api/episodes", headers=headers))[0] == 404
        async with http.patch(bazarr.url + "/api/series?seriesid=999&action=scan-disk", headers=headers) as response:
            assert response.status == 204


# --- after the job wrote the subtitle -------------------------------------------------------------------------


async def run_followups(queue: JobQueue, action: BazarrNotify, jobs: list[Job], **options: Any) -> None:
    """Store the jobs' follow-ups as their completion would, and run them until none is pending."""
    followups = FollowUps([action], FollowUpStore(queue.db), node="test-node", **options)
    for job in jobs:
        await followups.store.add(job, followups.plan(job))
    followups.nudge()

    async def settled() -> bool:
        return followups.pending == 0 and await followups.store.count_pending() == 0

    try:
        await eventually(settled, "the follow-ups", timeout=30)
    finally:
        await followups.drain(seconds=30)


async def test_bazarr_rescans_the_series_or_movie_after_a_completed_job(
    queue: JobQueue, bazarr: FakeBazarr, tmp_path: Path
) -> None:
    stock(bazarr, tmp_path)
    await make_sync(queue, bazarr, tmp_path).pull_once()
    jobs = await jobs_by_path(queue)
    episode = await finish(queue, jobs[str(local_path(tmp_path, EP1))], subtitle="en")
    movie = await finish(queue, jobs[str(local_path(tmp_path, UNKNOWN_AUDIO))], subtitle="fr")
    skipped = await finish(queue, jobs[str(local_path(tmp_path, EP2))], subtitle=None)
    brazil = await finish(queue, jobs[str(local_path(tmp_path, BRAZIL))], subtitle="pt")
    action = BazarrNotify(bazarr.url, bazarr.api_key)  # scan-disk, the default
    assert not action.wants(skipped)  # nothing was written

    with structlog.testing.capture_logs() as logs:
        await run_followups(queue, action, [episode, movie, skipped, brazil])

    [series_scan] = bazarr.calls_to("PATCH", "/api/series")
    assert series_scan.query == [("seriesid", "1"), ("action", "scan-disk")] and series_scan.authorised
    [movie_scan] = bazarr.calls_to("PATCH", "/api/movies")
    assert movie_scan.query == [("radarrid", "7"), ("action", "scan-disk")]
    # Brazilian Portuguese counts only under Bazarr's own name: uploaded, whatever the mode.
    [upload] = bazarr.uploads
    assert upload.form == {"radarrid": "8", "language": "pb", "forced": "false", "hi": "false"}
    assert upload.content == Path(str(brazil.result_path)).read_bytes()
    assert len(events(logs, "bazarr_rescanned")) == 2 and len(events(logs, "followup_done")) == 3


async def test_upload_mode_posts_bazarrs_form_fields_and_the_file(
    queue: JobQueue, bazarr: FakeBazarr, tmp_path: Path
) -> None:
    stock(bazarr, tmp_path)
    await make_sync(queue, bazarr, tmp_path).pull_once()
    jobs = await jobs_by_path(queue)
    episode = await finish(queue, jobs[str(local_path(tmp_path, EP1))], subtitle="en")
    movie = await finish(queue, jobs[str(local_path(tmp_path, UNKNOWN_AUDIO))], subtitle="fr")
    Path(str(movie.result_path)).write_text("1\n00:00:01,000 --> 00:00:02,000\n[Music]\n\n", encoding="utf-8")

    with structlog.testing.capture_logs() as logs:
        await run_followups(queue, BazarrNotify(bazarr.url, bazarr.api_key, mode="upload"), [episode, movie])

    uploads = {upload.kind: upload for upload in bazarr.uploads}
    assert uploads["episode"].form == {
        "seriesid": "1",
        "episodeid": "101",
        "language": "en",
        "forced": "false",
        "hi": "false",
    }
    assert uploads["episode"].filename == "Show - S01E01.en.srt"
    assert uploads["episode"].content == SRT.encode()
    assert uploads["movie"].form == {"radarrid": "7", "language": "fr", "forced": "false", "hi": "false"}
    assert uploads["movie"].filename == "subtitle.srt"  # not plain ASCII: Bazarr only reads the extension
    assert bazarr.calls_to("PATCH", "/api/series") == []
    [warning] = events(logs, "bazarr_upload_may_count_as_hi")
    assert warning["job_id"] == movie.id


async def test_a_refused_key_is_not_retried_by_the_followup(
    queue: JobQueue, bazarr: FakeBazarr, tmp_path: Path
) -> None:
    stock(bazarr, tmp_path)
    await make_sync(queue, bazarr, tmp_path).pull_once()
    episode = await finish(queue, (await jobs_by_path(queue))[str(local_path(tmp_path, EP1))], subtitle="en")

    with structlog.testing.capture_logs() as logs:
        await run_followups(queue, BazarrNotify(bazarr.url, "wrong"), [episode], first_delay=0.01, attempts=4)

    [refused] = bazarr.calls_to("PATCH", "/api/series")  # one try only
    assert not refused.authorised
    [failed] = events(logs, "followup_failed")
    assert "check BAZARR_API_KEY" in failed["error"] and failed["next_try_seconds"] is None


def test_the_followup_is_wired_from_the_settings(tmp_path: Path) -> None:
    from tests.acceptance.engine_harness import engine_settings

    configured = engine_settings(tmp_path, bazarr_url="http://bazarr:6767/bazarr", bazarr_api_key="k")
    assert "bazarr" in [action.name for action in followup_actions(configured)]
    followup = bazarr_followup_from_settings(configured.model_copy(update={"bazarr_after_write": "upload"}))
    assert isinstance(followup, BazarrNotify) and followup.mode == "upload"
    assert bazarr_followup_from_settings(configured.model_copy(update={"bazarr_after_write": "none"})) is None
    assert bazarr_followup_from_settings(engine_settings(tmp_path, bazarr_url="http://bazarr:6767")) is None


# --- the real thing -------------------------------------------------------------------------------------------


@pytest.mark.slow
async def test_a_wanted_episode_is_transcribed_and_bazarr_rescans_it(bazarr: FakeBazarr, tmp_path: Path) -> None:
    from tests.acceptance.engine_harness import engine_settings, srt_text
    from tests.media_factory import make_video, speak
    from transcriptarr.service import build

    local = local_path(tmp_path, EP1)
    local.parent.mkdir(parents=True)
    speech = speak("Rivers carry water from the mountains to the sea.", tmp_path / "speech.wav")
    make_video(local, [(speech, "eng", True)])
    bazarr.add_episode(1, 101, EP1, audio=["en"], missing=[lang("en")])
    settings = engine_settings(
        tmp_path,
        bazarr_url=bazarr.url,
        bazarr_api_key=bazarr.api_key,
        path_mappings="|".join(mappings(tmp_path)),
    )

    async with build(settings) as parts:
        sync = bazarr_sync_from_settings(parts.settings, parts.queue, parts.paths, wake=parts.pool.wake)
        assert sync is not None
        report: SyncReport = await sync.pull_once()
        assert report.queued == 1
        await parts.pool.run(asyncio.Event(), once=True)
        job = await parts.queue.get(report.jobs[0])
        assert job.state == JobState.COMPLETED, job.error
        await wait_until(lambda: bool(bazarr.calls_to("PATCH", "/api/series")), seconds=30)

    subtitle = local.with_suffix(".en.srt")
    assert job.result_path == str(subtitle)
    _, words = srt_text(subtitle)
    assert "water" in words
    [scan] = bazarr.calls_to("PATCH", "/api/series")
    assert dict(scan.query) == {"seriesid": "1", "action": "scan-disk"}
