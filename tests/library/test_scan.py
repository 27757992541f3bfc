"""Full scans on real folders: what is queued, what a rescan costs, and what is never fatal."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest
import structlog

from tests.library.conftest import Kit, LibraryMaker, place
from transcriptarr.db.models import JobState, Source
from transcriptarr.library.index import MediaIndex
from transcriptarr.library.walker import WalkReport, walk

DAY = 86_400.0


def build(kit: Kit, root: Path) -> dict[str, Path]:
    """A small library: films with and without subtitles, an episode, extras and clutter."""
    files = {
        "needs": place(kit.french, root / "Films" / "Amélie (2001)" / "Amélie (2001).mkv"),
        "covered": place(kit.french, root / "Films" / "Covered" / "Covered.mkv"),
        "english": place(kit.english, root / "Shows" / "Show" / "Season 1" / "Show - S01E01.mkv"),
        "silent": place(kit.no_audio, root / "Films" / "Silent" / "Silent.mkv"),
        "sample": place(kit.french, root / "Films" / "Covered" / "Sample" / "sample.mkv"),
    }
    (root / "Films" / "Covered" / "Covered.fr.srt").write_text("1\n")
    (root / "Films" / "Covered" / "Covered.nfo").write_text("<movie/>")
    (root / "Films" / "Covered" / "poster.jpg").write_bytes(b"\xff\xd8")
    return files


async def test_first_scan_queues_and_a_rescan_of_the_unchanged_library_runs_no_ffprobe(
    make_library: LibraryMaker, kit: Kit, library_dir: Path
) -> None:
    files = build(kit, library_dir)
    library = make_library()
    first = await library.scan()
    # The sample is turned away by its path: probed are the four others.
    assert sorted(make_library.probe.paths) == sorted(Path(files[k]) for k in ("needs", "covered", "english", "silent"))
    assert first.media_files == 5 and first.probes == 4
    jobs = await make_library.jobs()
    assert {(job.media_path, job.target_language, job.task) for job in jobs} == {
        (str(files["needs"]), None, "transcribe"),
        (str(files["english"]), None, "transcribe"),
    }
    assert all(job.source == Source.SCAN and 100 <= job.priority <= 199 for job in jobs)
    assert make_library.wakes, "the worker pool is woken after queueing"
    decided = dict(first.decided)
    assert decided[str(files["covered"])].summary.startswith("nothing to do")
    assert decided[str(files["silent"])].summary == "skipped: no audio stream"

    again = await make_library().scan()  # a new Library: nothing kept in memory between them
    assert (again.probes, again.decided, again.actions) == (0, [], [])
    assert (again.media_files, again.unchanged) == (5, 5)
    assert make_library.probe.count == 4
    assert len(await make_library.jobs()) == 2


async def test_a_sidecar_added_later_cancels_the_queued_job_without_probing(
    make_library: LibraryMaker, kit: Kit, library_dir: Path
) -> None:
    film = place(kit.french, library_dir / "Film" / "Film.mkv")
    library = make_library()
    await library.scan()
    [job] = await make_library.jobs()
    (library_dir / "Film" / "Subs").mkdir()
    (library_dir / "Film" / "Subs" / "Film.fre.srt").write_text("1\n")

    report = await library.scan()
    assert report.probes == 0, "the cached probe result is used"
    assert [path for path, _ in report.decided] == [str(film)]
    cancelled = await make_library.queue.get(job.id)
    assert cancelled.state == JobState.CANCELLED
    assert cancelled.error == "no longer needed: original (fr): has French subtitles: Film.fre.srt (sidecar)"


async def test_a_changed_file_is_probed_again(make_library: LibraryMaker, kit: Kit, library_dir: Path) -> None:
    film = place(kit.french, library_dir / "Film.mkv")
    library = make_library()
    await library.scan()
    os.utime(film, (time.time(), time.time() + 5))
    report = await library.scan()
    assert report.probes == 1 and len(report.decided) == 1
    assert len(await make_library.jobs()) == 1, "the queued job stays the one job for this work"


async def test_a_deleted_file_loses_its_job_and_its_index_row(
    make_library: LibraryMaker, kit: Kit, library_dir: Path
) -> None:
    film = place(kit.french, library_dir / "Film" / "Film.mkv")
    place(kit.french, library_dir / "Other.mkv")
    library = make_library()
    await library.scan()
    film.unlink()
    report = await library.scan()
    assert report.removed == [(str(film), "file deleted")]
    [job] = [job for job in await make_library.jobs() if job.media_path == str(film)]
    assert (job.state, job.error) == (JobState.CANCELLED, f"file deleted: {film}")
    assert await MediaIndex(make_library.db).get(str(film)) is None


async def test_a_moved_file_keeps_its_probe_and_its_job_follows(
    make_library: LibraryMaker, kit: Kit, library_dir: Path
) -> None:
    film = place(kit.french, library_dir / "Incoming" / "Film.mkv")
    library = make_library()
    await library.scan()
    [old_job] = await make_library.jobs()
    await make_library.queue.set_priority(old_job.id, 777)  # set by hand: kept
    moved = library_dir / "Films" / "Film (2020)" / "Film (2020).mkv"
    moved.parent.mkdir(parents=True)
    film.rename(moved)

    report = await library.scan()
    assert report.probes == 0 and report.moved == [(str(film), str(moved))]
    old_job = await make_library.queue.get(old_job.id)
    assert (old_job.state, old_job.error) == (JobState.CANCELLED, f"moved to {moved}")
    [new_job] = await make_library.live_jobs()
    assert (new_job.media_path, new_job.priority, new_job.source) == (str(moved), 777, Source.SCAN)
    assert new_job.details["moved_from"] == str(film) and new_job.details["replaces_job"] == old_job.id
    index = MediaIndex(make_library.db)
    assert await index.get(str(film)) is None and (await index.get(str(moved))) is not None


async def test_odd_names_are_handled_and_unsafe_ones_skipped_with_a_log(
    make_library: LibraryMaker, kit: Kit, library_dir: Path
) -> None:
    odd = ["with spaces.mkv", 'it\'s "quoted".mkv', "ünïcødé 映画.mkv", "-leading dash.mkv", "$(echo x); `y`.mkv"]
    for name in odd:
        place(kit.french, library_dir / name)
    place(kit.french, library_dir / "new\nline.mkv")
    os.link(library_dir / "with spaces.mkv", os.fsencode(library_dir) + b"/bad \xff byte.mkv")
    with structlog.testing.capture_logs() as logs:
        report = await make_library().scan()
    queued = sorted(Path(job.media_path or "").name for job in await make_library.jobs())
    assert queued == sorted(odd)
    skipped = [entry for entry in logs if entry["event"] == "file_skipped"]
    assert len(skipped) == 2
    assert {entry["reason"].split(";")[0] for entry in skipped} == {
        "its name contains a control character (e.g. a newline)",
        "its name is not valid UTF-8",
    }
    assert len(report.problems) == 2


async def test_symlink_loops_and_broken_links_are_skipped(
    make_library: LibraryMaker, kit: Kit, library_dir: Path, tmp_path: Path
) -> None:
    place(kit.french, library_dir / "Films" / "Film.mkv")
    (library_dir / "Films" / "loop").symlink_to(library_dir)
    (library_dir / "Films" / "Broken.mkv").symlink_to(tmp_path / "nowhere.mkv")
    outside = place(kit.french, tmp_path / "elsewhere" / "Linked.mkv")
    (library_dir / "Linked").symlink_to(outside.parent)
    with structlog.testing.capture_logs() as logs:
        await make_library().scan()
    queued = sorted(job.media_path or "" for job in await make_library.jobs())
    assert queued == [str(library_dir / "Films" / "Film.mkv"), str(library_dir / "Linked" / "Linked.mkv")]
    events = {(entry["event"], entry.get("reason")) for entry in logs}
    assert ("folder_skipped", "already walked (a symlink loop or a second link)") in events
    assert ("file_skipped", "broken symlink") in events


async def test_an_unreadable_folder_is_logged_and_its_files_are_not_taken_for_deleted(
    make_library: LibraryMaker, kit: Kit, library_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    locked = library_dir / "Locked"
    place(kit.french, locked / "Film.mkv")
    place(kit.french, library_dir / "Open" / "Film.mkv")
    library = make_library()
    await library.scan()
    place(kit.french, library_dir / "Open" / "New.mkv")

    # As root, permissions do not stop reading: make the listing of one folder fail as it would.
    real_scandir = os.scandir

    def scandir(path: str) -> object:
        if os.fspath(path) == str(locked):
            raise PermissionError(13, "Permission denied", os.fspath(path))
        return real_scandir(path)

    monkeypatch.setattr(os, "scandir", scandir)
    with structlog.testing.capture_logs() as logs:
        report = await library.scan()
    assert report.problems == [f"cannot read folder {locked}"]
    assert report.removed == [] and report.cancelled == []
    assert [entry["path"] for entry in logs if entry["event"] == "folder_unreadable"] == [str(locked)]
    assert [Path(path).name for path, _ in report.decided] == ["New.mkv"], "the rest of the library is scanned"
    assert len(await make_library.live_jobs()) == 3


def test_a_folder_the_user_cannot_read_is_reported_by_the_walk(tmp_path_factory: pytest.TempPathFactory) -> None:
    """A real permission error: the walk runs in a child process that drops to user `nobody`."""
    if os.geteuid() != 0:
        pytest.skip("needs root to switch to another user")
    import tempfile

    root = Path(tempfile.mkdtemp(prefix="walk-as-nobody-", dir="/tmp"))
    try:
        root.chmod(0o755)
        (root / "open").mkdir(mode=0o755)
        (root / "open" / "a.mkv").write_bytes(b"x")
        (root / "locked").mkdir(mode=0o700)  # owned by root: nobody may not list it
        (root / "locked" / "b.mkv").write_bytes(b"x")
        (root / "open").chmod(0o755)
        read, write = os.pipe()
        pid = os.fork()
        if pid == 0:  # the child: drop privileges, walk, report, exit without running pytest's exit code
            try:
                os.setgid(65534)
                os.setuid(65534)
                report = WalkReport()
                files = sorted(entry.path for folder in walk(str(root), report) for entry in folder.files)
                os.write(write, json.dumps({"files": files, "unreadable": report.unreadable}).encode())
            finally:
                os._exit(0)
        os.close(write)
        with os.fdopen(read) as pipe:
            result = json.loads(pipe.read())
        os.waitpid(pid, 0)
        assert result == {"files": [str(root / "open" / "a.mkv")], "unreadable": [str(root / "locked")]}
    finally:
        import shutil

        shutil.rmtree(root)


async def test_a_file_vanishing_mid_scan_is_not_fatal(make_library: LibraryMaker, kit: Kit, library_dir: Path) -> None:
    doomed = place(kit.french, library_dir / "Doomed.mkv")
    place(kit.french, library_dir / "Stays.mkv")
    probe = make_library.probe

    async def vanishing(path: Path):  # type: ignore[no-untyped-def]
        if path.name == "Doomed.mkv":
            path.unlink()
        return await probe(path)

    library = make_library()
    library.prober._probe = vanishing
    report = await library.scan()
    assert dict(report.decided)[str(doomed)].summary == "skipped: the file vanished while it was looked at"
    assert [Path(job.media_path or "").name for job in await make_library.jobs()] == ["Stays.mkv"]
    assert (await library.scan()).removed == [(str(doomed), "file deleted")]


async def test_a_dry_run_queues_and_saves_nothing(make_library: LibraryMaker, kit: Kit, library_dir: Path) -> None:
    film = place(kit.french, library_dir / "Film.mkv")
    library = make_library()
    report = await library.scan(dry_run=True)
    assert [(path, d.jobs) for path, d in report.decided if d.queue] == [(str(film), [(None, "transcribe")])]
    assert await make_library.jobs() == [] and await MediaIndex(make_library.db).load() == {}
    assert (await library.scan()).queued, "a real scan afterwards still queues it"


async def test_an_ignore_marker_added_later_cancels_the_folders_jobs(
    make_library: LibraryMaker, kit: Kit, library_dir: Path
) -> None:
    film = place(kit.french, library_dir / "Kids" / "Cartoon" / "Cartoon.mkv")
    library = make_library()
    await library.scan()
    (library_dir / "Kids" / ".transcriptarr-ignore").touch()
    report = await library.scan()
    reason = f"folder {library_dir / 'Kids'} holds .transcriptarr-ignore"
    assert report.removed == [(str(film), reason)]
    [job] = await make_library.jobs()
    assert (job.state, job.error) == (JobState.CANCELLED, f"{reason}: {film}")


async def test_an_empty_library_folder_is_taken_for_an_unmounted_share(
    make_library: LibraryMaker, kit: Kit, library_dir: Path
) -> None:
    film = place(kit.french, library_dir / "Film" / "Film.mkv")
    library = make_library()
    await library.scan()
    film.unlink()
    film.parent.rmdir()
    with structlog.testing.capture_logs() as logs:
        report = await library.scan()
    assert report.removed == [] and len(await make_library.live_jobs()) == 1
    assert any(entry["event"] == "library_folder_empty" for entry in logs)


async def test_changed_rules_decide_again_without_probing(
    make_library: LibraryMaker, kit: Kit, library_dir: Path
) -> None:
    place(kit.french, library_dir / "Film.mkv")
    await make_library().scan()
    report = await make_library(rules={"target_languages": ("original", "en")}).scan()
    assert report.probes == 0 and len(report.decided) == 1
    assert sorted((job.target_language or "", job.task) for job in await make_library.jobs()) == [
        ("", "transcribe"),
        ("en", "translate"),
    ]


@pytest.mark.parametrize(
    ("order", "expected"),
    [
        ("newest", ["new.mkv", "month.mkv", "old.mkv"]),
        ("oldest", ["old.mkv", "month.mkv", "new.mkv"]),
        ("smallest", ["small.mkv", "new.mkv", "month.mkv"]),
        ("path", ["month.mkv", "new.mkv", "old.mkv"]),
    ],
)
async def test_priority_within_the_scan_band(
    make_library: LibraryMaker, kit: Kit, library_dir: Path, order: str, expected: list[str]
) -> None:
    now = time.time()
    for size, (name, age) in enumerate((("new.mkv", 0.0), ("month.mkv", 30 * DAY), ("old.mkv", 2000 * DAY)), 1):
        path = place(kit.french, library_dir / name)
        with path.open("ab") as handle:
            handle.write(b"\0" * 50_000 * size)  # all bigger than small.mkv, new < month < old
        os.utime(path, (now - age, now - age))
    if order == "smallest":
        small = place(kit.french, library_dir / "small.mkv")
        os.utime(small, (now - 5000 * DAY, now - 5000 * DAY))
    await make_library(priority_order=order).scan()
    claimed = []
    while jobs := await make_library.queue.claim("w", "node"):
        claimed += [Path(job.media_path or "").name for job in jobs]
    assert claimed[: len(expected)] == expected
    jobs = await make_library.jobs()
    assert all(100 <= job.priority <= 199 for job in jobs)


async def test_files_still_being_written_are_left_for_later(
    make_library: LibraryMaker, kit: Kit, library_dir: Path
) -> None:
    fresh = place(kit.french, library_dir / "Copying.mkv")
    done = place(kit.french, library_dir / "Done.mkv")
    an_hour_ago = time.time() - 3600
    os.utime(done, (an_hour_ago, an_hour_ago))
    report = await make_library(stable_seconds=30, watch=False).scan()
    assert report.fresh == [str(fresh)] and [path for path, _ in report.decided] == [str(done)]
    assert make_library.probe.paths == [done], "a file modified within the window is not probed"
    os.utime(fresh, (an_hour_ago, an_hour_ago))
    assert [path for path, _ in (await make_library(stable_seconds=30).scan()).decided] == [str(fresh)]
