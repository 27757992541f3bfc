"""A full disk and a read-only library folder while a real job writes its subtitle (issue #7).

Real file systems (a tiny tmpfs, read-only bind mounts: tests/faults/mounts.py), the
real engine (bundled tiny.en) and real short speech. Whatever fails, these hold:
the reason names the file, says what went wrong and what to do; the media and the
subtitle next to it in another language are intact byte for byte; no temporary or
partial subtitle (or work file) is left behind.

The policy under test (transcriptarr/subtitles/writer.py, workers/job_runner.py):
a full disk is a passing problem, so the job is retried with a growing pause; a
read-only folder needs the user, so the job fails at once and says how to queue it
again. Both are noticed before the transcription when statvfs can tell, and at the
write itself when the disk fills or turns read-only during the transcription.

About 15 s in all (each test runs one or two short real transcriptions).
"""

from __future__ import annotations

import asyncio
import errno
import functools
import shutil
from collections.abc import Iterable, MutableMapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import structlog

from tests.acceptance.engine_harness import engine_settings, process, srt_text
from tests.api.live import LiveService, bazarr_post
from tests.faults.mounts import fill, make_read_only, read_only_view, tmpfs, writable_view
from tests.media_factory import make_video, speak, write_srt
from tests.polling import eventually
from transcriptarr.db.models import FINISHED_STATES, Job, JobState, Source, Stage
from transcriptarr.queue.jobqueue import NewJob
from transcriptarr.service import Components, build
from transcriptarr.subtitles.writer import TEMP_MARKER, SubtitleWriteError, write_atomic

# The checks race a job through its stages: look often.
poll = functools.partial(eventually, timeout=60.0, every=0.005)

pytestmark = pytest.mark.slow

MOVIE = "Movie (2020).mkv"
SUBTITLE = "Movie (2020).en.srt"  # what the job writes
FRENCH = "Movie (2020).fr.srt"  # there before: must survive untouched
# The stages of a job that got past the up-front check of the media folder.
PAST_THE_CHECK = {Stage.EXTRACTING_AUDIO, Stage.DETECTING_LANGUAGE, Stage.TRANSCRIBING, Stage.WRITING}


@pytest.fixture(scope="module")
def speech_movie(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """About three seconds of English speech in a tiny .mkv (37 KB)."""
    folder = tmp_path_factory.mktemp("speech")
    speech = speak("The quick brown fox jumps over the lazy dog.", folder / "fox.wav")
    return make_video(folder / "source.mkv", [(speech, "eng", True)])


@dataclass(frozen=True)
class Shelf:
    """A media folder as a user has it: the movie and a French subtitle, with their bytes."""

    folder: Path
    before: dict[str, bytes]

    @property
    def media(self) -> Path:
        return self.folder / MOVIE

    def assert_intact(self) -> None:
        for name, content in self.before.items():
            assert (self.folder / name).read_bytes() == content, f"{name} was changed"

    def leftovers(self) -> list[str]:
        """Temporary or partial files of ours: there must never be any once a job has ended."""
        return sorted(p.name for p in self.folder.iterdir() if TEMP_MARKER in p.name or p.name.endswith(".part"))


def stock(folder: Path, movie: Path) -> Shelf:
    folder.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(movie, folder / MOVIE)
    write_srt(folder / FRENCH, [(0.5, 2.5, "Le renard brun saute par-dessus le chien.")])
    return Shelf(folder, {name: (folder / name).read_bytes() for name in (MOVIE, FRENCH)})


def past_the_check(parts: Components) -> bool:
    return any(ctx.stage in PAST_THE_CHECK for ctx in parts.pool.busy().values())


def stages(logs: Iterable[MutableMapping[str, Any]]) -> set[object]:
    return {entry["stage"] for entry in logs if entry["event"] == "job_stage"}


async def enqueue(parts: Components, media: Path) -> int:
    return (await parts.queue.enqueue(NewJob(source=Source.MANUAL, media_path=str(media)))).job.id


def work_files(tmp_path: Path) -> list[Path]:
    return list((tmp_path / "data" / "work").iterdir())


# --------------------------------------------------------------------------- a full disk


async def test_a_full_library_disk_is_noticed_before_transcribing_and_retried_until_space_is_freed(
    tmp_path: Path, speech_movie: Path
) -> None:
    with tmpfs(tmp_path / "lib", size="1m") as lib:
        shelf = stock(lib, speech_movie)
        filler = fill(lib)
        async with build(engine_settings(tmp_path, retry_backoff_seconds=1, max_retries=4)) as parts:
            job_id = await enqueue(parts, shelf.media)
            stop = asyncio.Event()
            with structlog.testing.capture_logs() as logs:
                pool = asyncio.create_task(parts.pool.run(stop))
                try:
                    first: list[Job] = []

                    async def failed_once() -> bool:
                        first[:] = [await parts.queue.get(job_id)]
                        return first[0].error is not None

                    await poll(failed_once, "the first attempt to fail")
                    while_full = stages(logs)
                    assert shelf.leftovers() == [] and not (lib / SUBTITLE).exists()
                    filler.unlink()  # the user frees some space

                    async def finished() -> bool:
                        return (await parts.queue.get(job_id)).state in FINISHED_STATES

                    await poll(finished, "the retry after space was freed to finish")
                finally:
                    stop.set()
                    await pool
            job = await parts.queue.get(job_id)

        error = first[0].error or ""
        assert not first[0].error_permanent
        assert "no space left on the disk holding" in error and str(shelf.media) in error, error
        assert "free some space there" in error and "retried" in error, error
        assert next(e["next_state"] for e in logs if e["event"] == "job_failed") == JobState.QUEUED
        # Noticed up front: no audio extracted, no transcription wasted on a write that cannot happen.
        assert while_full == {Stage.PROBING}
        assert job.state == JobState.COMPLETED, job.error
        assert job.attempts >= 2 and job.result_path == str(lib / SUBTITLE)
        _, words = srt_text(lib / SUBTITLE)
        assert {"quick", "lazy", "dog"} & set(words.split()), words
        shelf.assert_intact()
        assert shelf.leftovers() == [] and work_files(tmp_path) == []


async def test_a_disk_that_fills_up_during_the_transcription_fails_the_write_and_leaves_nothing_behind(
    tmp_path: Path, speech_movie: Path
) -> None:
    with tmpfs(tmp_path / "lib", size="1m") as lib:
        shelf = stock(lib, speech_movie)
        async with build(engine_settings(tmp_path, max_retries=0)) as parts:
            job_id = await enqueue(parts, shelf.media)
            pool = asyncio.create_task(parts.pool.run(asyncio.Event(), once=True))
            await poll(lambda: past_the_check(parts) or pool.done(), "the job to get past the folder check")
            assert not pool.done(), "the job ended before the disk could be filled"
            fill(lib)  # another program fills the disk while we transcribe
            await pool
            job = await parts.queue.get(job_id)
        assert shelf.leftovers() == []  # the temporary subtitle was created, then removed
        assert not (lib / SUBTITLE).exists()
        shelf.assert_intact()

    error = job.error or ""
    assert job.state == JobState.FAILED and not job.error_permanent  # only because MAX_RETRIES=0
    assert f"cannot write subtitle {lib / SUBTITLE}: no space left on the disk holding {lib}" in error, error
    assert work_files(tmp_path) == []


def test_replacing_a_subtitle_on_a_full_disk_keeps_the_old_one(tmp_path: Path) -> None:
    with tmpfs(tmp_path / "lib", size="256k") as lib:
        target = lib / SUBTITLE
        write_atomic(target, "1\n00:00:01,000 --> 00:00:02,000\nthe old subtitle\n")
        old = target.read_bytes()
        fill(lib)
        with pytest.raises(SubtitleWriteError) as caught:
            write_atomic(target, "1\n00:00:01,000 --> 00:00:02,000\nthe new subtitle\n")
        assert caught.value.errno == errno.ENOSPC and not caught.value.permanent
        assert target.read_bytes() == old
        assert [p.name for p in lib.iterdir() if TEMP_MARKER in p.name] == []


# --------------------------------------------------------------------------- a read-only folder


async def test_a_read_only_library_folder_fails_at_once_without_transcribing(
    tmp_path: Path, speech_movie: Path
) -> None:
    shelf = stock(tmp_path / "shelf", speech_movie)
    with read_only_view(shelf.folder, tmp_path / "lib") as lib, structlog.testing.capture_logs() as logs:
        [job] = await process(engine_settings(tmp_path), [lib / MOVIE])

    error = job.error or ""
    assert job.state == JobState.FAILED and job.error_permanent and job.attempts == 1
    assert f"cannot write subtitles for {lib / MOVIE}: folder {lib} is on a read-only file system" in error, error
    assert "mount the media folder read-write" in error and f"transcriptarr retry {job.id}" in error, error
    assert stages(logs) == {Stage.PROBING}  # failed before any audio was extracted
    shelf.assert_intact()
    assert sorted(p.name for p in shelf.folder.iterdir()) == sorted([MOVIE, FRENCH])
    assert work_files(tmp_path) == []


async def test_a_folder_turning_read_only_during_the_transcription_fails_the_write_for_good(
    tmp_path: Path, speech_movie: Path
) -> None:
    shelf = stock(tmp_path / "shelf", speech_movie)
    with writable_view(shelf.folder, tmp_path / "lib") as lib:
        async with build(engine_settings(tmp_path)) as parts:
            job_id = await enqueue(parts, lib / MOVIE)
            pool = asyncio.create_task(parts.pool.run(asyncio.Event(), once=True))
            await poll(lambda: past_the_check(parts) or pool.done(), "the job to get past the folder check")
            assert not pool.done(), "the job ended before the folder could turn read-only"
            make_read_only(lib)  # the share was remounted read-only under us
            await pool
            job = await parts.queue.get(job_id)

    error = job.error or ""
    assert job.state == JobState.FAILED and job.error_permanent and job.attempts == 1
    assert f"cannot write subtitle {lib / SUBTITLE}: folder {lib} is on a read-only file system" in error, error
    assert f"transcriptarr retry {job_id}" in error, error
    shelf.assert_intact()
    assert sorted(p.name for p in shelf.folder.iterdir()) == sorted([MOVIE, FRENCH])
    assert work_files(tmp_path) == []


# --------------------------------------------------------------------------- a full DATA_DIR


async def test_a_full_work_folder_fails_the_extraction_instead_of_cutting_the_audio_short(
    tmp_path: Path, speech_movie: Path
) -> None:
    """Three seconds of 16 kHz PCM (96 KB) do not fit in 32 KB. ffmpeg exits with status 0
    all the same: without the check, the job would transcribe one second and write a short subtitle."""
    shelf = stock(tmp_path / "lib", speech_movie)
    with tmpfs(tmp_path / "data", size="32k") as data:
        [job] = await process(engine_settings(tmp_path, data_dir=data, max_retries=0), [shelf.media])
        assert list((data / "work").iterdir()) == []

    assert job.state == JobState.FAILED and not job.error_permanent, (job.state, job.result_path)  # MAX_RETRIES=0
    first_line = (job.error or "").splitlines()[0]
    assert str(shelf.media) in first_line and f"no space left in the work folder {data / 'work'}" in first_line
    assert "set DATA_DIR to a bigger disk" in first_line
    assert not (shelf.folder / SUBTITLE).exists()
    shelf.assert_intact()


def test_a_full_spool_answers_bazarr_with_a_clear_error_and_keeps_no_partial_upload(tmp_path: Path) -> None:
    pcm = bytes(96_000)  # three seconds of silence in Bazarr's format
    with tmpfs(tmp_path / "data", size="1m") as data:
        (data / "spool").mkdir()
        fill(data)
        settings = engine_settings(tmp_path, transcriptarr_mode="provider", data_dir=data)
        with LiveService(settings, workers=False) as live:
            answer = bazarr_post(live.url, "asr", pcm, {"task": "transcribe", "language": "en", "output": "srt"})
        assert list((data / "spool").iterdir()) == []

    # Not "400 malformed body": the server's disk is the problem, and the answer says which folder and what to do.
    assert answer.status_code == 503, answer.text
    assert f"cannot store the upload in {data / 'spool'} (No space left on device)" in answer.text
    assert "set DATA_DIR to a writable folder on a bigger disk" in answer.text
