"""A SIGKILL or SIGTERM part-way through a two-minute transcription costs at most one checkpoint interval.

The real service transcribes ~2 minutes of speech unbroken, then again stopped once the
job's progress in the database passed 55% and restarted (tests/faults/resume.py): with a
SIGKILL of the whole process group (a crash, `docker kill`), and with a SIGTERM whose grace
is too short for the job to finish (a container update): the job is handed back with the
checkpoint it stored and the next start continues from it. The attempt after the restart must
transcribe at most 0.6 of the audio (it continues from the checkpoint) and write the
same words as the unbroken run.

The same words, exactly: a checkpoint of the (default) sequential pipeline is taken where
one of its 30 s decoding windows starts and names that window, and the attempt after the
restart decodes the chunk's speech from that window on (workers/transcribe.py): the same
windows over the same audio features, at temperature 0, so the same words. Only the words'
timings next to the seam may move by a few hundredths of a second.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.faults.resume import (
    CHECKPOINT_SECONDS,
    Run,
    make_media,
    measure_interrupted,
    transcribe_unbroken,
)

pytestmark = pytest.mark.slow

KILL_AT = 0.55
# Progress moves on a decoded window at a time (a window is about a quarter of this file), so
# the kill lands between 55% and the end of the window after it.
KILL_LATEST = 0.85
WINDOW_SECONDS = 30.0  # the pause after a window's last segment is known once the next window is decoded


@pytest.fixture(scope="module")
def unbroken(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Run]:
    """The two-minute file and its transcription without interruption (shared by both stops)."""
    if shutil.which("espeak-ng") is None:
        pytest.skip("espeak-ng is not installed (Debian package espeak-ng)")
    workdir = tmp_path_factory.mktemp("resume")
    media = make_media(workdir / "media")
    run, _ = transcribe_unbroken(workdir, media)
    return workdir, media, run


@pytest.mark.parametrize("stop_with", ["sigkill", "sigterm"])
def test_restart_after_a_stop_continues_from_the_checkpoint(unbroken: tuple[Path, Path, Run], stop_with: str) -> None:
    workdir, media, reference = unbroken
    measured = measure_interrupted(workdir, media, reference, kill_at=KILL_AT, stop_with=stop_with)
    print(stop_with, measured.describe())
    killed, unbroken_run = measured.killed, measured.unbroken
    assert measured.duration >= 110, "the media should be about two minutes long"
    assert killed.progress_at_kill is not None and KILL_AT <= killed.progress_at_kill <= KILL_LATEST
    assert killed.resumed_from is not None, f"the attempt after the restart started over; logs: {measured.logs}"

    # At most one checkpoint interval (plus the window in flight) was done twice.
    redone = killed.progress_at_kill * measured.duration - killed.resumed_from
    assert redone <= CHECKPOINT_SECONDS + WINDOW_SECONDS, measured.describe()
    assert measured.second_attempt_ratio <= 0.6, measured.describe()

    assert killed.words == unbroken_run.words, measured.word_diff()
