"""A library of broken, odd and hostile media files through the real scan and the real engine (issue #7).

The corpus (tests/faults/bad_media.py) mixes good files, many with odd names, with
bad ones: empty, truncated, mislabelled, without audio, with absurd durations, FIFOs,
dangling symlinks, unsafe names. One scan and one run of the workers to the end
(the service's own parts: library scanner, queue, pool, tiny.en) must leave every
file in a clear state: a subtitle with the right name, or a reason (in the media
index, the scan's problems, or a failed job). No crash, no hang, no job left behind.

About 25 s (11 short real transcriptions, then `transcriptarr explain` five times).
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

import pytest

from tests.acceptance.engine_harness import engine_settings, long_speech, srt_text
from tests.faults.bad_media import Expected, build_corpus
from tests.media_factory import make_video, speak
from transcriptarr.db.models import FINISHED_STATES, Job, JobState
from transcriptarr.service import build
from transcriptarr.settings import Settings
from transcriptarr.subtitles.writer import TEMP_MARKER

pytestmark = pytest.mark.slow

# Far above what the corpus needs (a few seconds a file): reaching it means something hangs.
RUN_LIMIT_SECONDS = 300


@pytest.fixture(scope="module")
def sources(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Path]:
    """(a short .mkv of English speech, its audio, a longer .mkv of speech), made once."""
    folder = tmp_path_factory.mktemp("sources")
    speech = speak("The quick brown fox jumps over the lazy dog.", folder / "fox.wav")
    movie = make_video(folder / "fox.mkv", [(speech, "eng", True)])
    longer = make_video(folder / "rivers.mkv", [(long_speech(folder, 2), "eng", True)])
    return movie, speech, longer


def library_settings(tmp_path: Path, library: Path) -> Settings:
    return engine_settings(
        tmp_path,
        library_paths=str(library),
        library_stable_seconds=0,  # every file was written a moment ago
        library_min_duration_seconds=0,
        library_watch=False,
        max_job_minutes=2,
        quality="fast",
    )


def check(expected: Expected, jobs: list[Job], row_reasons: list[str] | None, problems: list[str]) -> list[str]:
    """What is wrong with how `expected` ended; empty when all is well."""
    path, name = expected.path, repr(expected.path.name)
    wrong = []
    if expected.ends == "subtitle":
        subtitle = path.parent / (expected.subtitle or "")
        if [(job.state, job.result_path) for job in jobs] != [(JobState.COMPLETED, str(subtitle))]:
            wrong.append(f"{name}: wanted one completed job writing {subtitle.name!r}, got {_jobs(jobs)}")
        elif not srt_text(subtitle)[0]:
            wrong.append(f"{name}: {subtitle.name!r} has no cues")
        return wrong
    if expected.ends != "failed" and jobs:
        wrong.append(f"{name}: should not have been queued, got {_jobs(jobs)}")
    if expected.ends == "scan" and not (row_reasons and expected.reason in row_reasons[-1]):
        wrong.append(f"{name}: wanted {expected.reason!r} as the media index's last reason, got {row_reasons}")
    if expected.ends == "walk" and not any(p.startswith(f"skipped {str(path)!r}: ") for p in problems):
        wrong.append(f"{name}: wanted in the scan's problems, got {problems}")
    if expected.ends == "walk" and not any(expected.reason in p for p in problems if repr(str(path)) in p):
        wrong.append(f"{name}: the scan's problem should say {expected.reason!r}: {problems}")
    if expected.ends == "folder" and f"cannot read folder {path.parent}" not in problems:
        wrong.append(f"{name}: wanted 'cannot read folder {path.parent}' in the scan's problems, got {problems}")
    if expected.ends == "failed":
        first_line = (jobs[0].error or "").splitlines()[0] if len(jobs) == 1 else ""
        if [(job.state, job.error_permanent, job.attempts) for job in jobs] != [(JobState.FAILED, True, 1)]:
            wrong.append(f"{name}: wanted one job failed for good at the first attempt, got {_jobs(jobs)}")
        elif path.stem not in first_line or expected.reason not in first_line:
            wrong.append(f"{name}: the reason should name the file and say {expected.reason!r}: {first_line!r}")
    return wrong


def _jobs(jobs: list[Job]) -> list[tuple[str, str | None, str | None]]:
    return [(job.state, job.result_path, job.error) for job in jobs]


async def test_every_file_of_a_bad_library_ends_clearly_and_every_good_one_gets_its_subtitle(
    tmp_path: Path, sources: tuple[Path, Path, Path]
) -> None:
    library = tmp_path / "lib"
    corpus = build_corpus(library, *sources)
    async with build(library_settings(tmp_path, library)) as parts:
        assert parts.library is not None
        report = await parts.library.scan()
        try:
            async with asyncio.timeout(RUN_LIMIT_SECONDS):
                summary = await parts.pool.run(asyncio.Event(), once=True)
        except TimeoutError:
            pytest.fail(f"the workers did not finish the corpus within {RUN_LIMIT_SECONDS} s")
        jobs = await parts.queue.list_jobs(limit=1000)
        rows = await parts.library.scanner.index.get_many([str(e.path) for e in corpus])

    stuck = [(job.media_path, job.state) for job in jobs if job.state not in FINISHED_STATES]
    assert stuck == [], "jobs left unfinished"
    by_media: dict[str, list[Job]] = defaultdict(list)
    for job in jobs:
        by_media[job.media_path or ""].append(job)
    wrong = []
    for expected in corpus:
        row = rows.get(str(expected.path))
        found = check(expected, by_media.pop(str(expected.path), []), row.reasons if row else None, report.problems)
        wrong += [f"{message}  [{expected.why}]" for message in found]
    assert wrong == [], "\n".join(wrong)
    assert by_media == {}, "jobs for files outside the corpus"

    # Exactly the expected sidecars, nothing half-written, no work file left.
    subtitles = {p for p in library.rglob("*.srt")}
    assert subtitles == {e.path.parent / e.subtitle for e in corpus if e.subtitle}
    assert [p for p in library.rglob("*") if TEMP_MARKER in p.name] == []
    assert list((tmp_path / "data" / "work").iterdir()) == []
    assert summary.failed == sum(e.ends == "failed" for e in corpus)


def test_explain_says_why_for_files_a_scan_passes_over(tmp_path: Path, sources: tuple[Path, Path, Path]) -> None:
    library = tmp_path / "lib"
    build_corpus(library, *sources)
    cases = {
        "named pipe.mkv": (0, "skipped: not a regular file (a named pipe, socket or device)"),
        "a folder.mkv": (0, "skipped: a folder, not a media file"),
        "dangling.mkv": (1, f"is a broken symlink (to {library / 'nowhere.mkv'}, which does not exist)"),
        "new\nline.mkv": (0, "skipped: its name contains a control character (e.g. a newline); rename it"),
        "latin1 caf\udce9.mkv": (0, "skipped: its name is not valid UTF-8; rename it"),
    }
    running = {}
    for number, name in enumerate(cases):
        env = {
            **os.environ,
            "DATABASE_URL": f"sqlite:///{tmp_path / f'explain{number}.db'}",  # one each: they run at once
            "LIBRARY_PATHS": str(library),
            "LIBRARY_MIN_DURATION_SECONDS": "0",
            "LOG_LEVEL": "warning",
        }
        command: list[str | bytes] = [sys.executable, "-m", "transcriptarr", "explain", os.fsencode(library / name)]
        running[name] = subprocess.Popen(command, env=env, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    for name, (status, words) in cases.items():
        out, err = running[name].communicate(timeout=120)
        text = (out + err).decode("utf-8", "backslashreplace")
        assert running[name].returncode == status, text
        assert words in text, text
        if status == 0:
            assert "decision: do not queue" in text, text
