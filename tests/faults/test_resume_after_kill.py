"""A SIGKILL or SIGTERM part-way through a two-minute transcription costs at most one checkpoint interval.

The real service transcribes ~2 minutes of speech unbroken, then again stopped once the
job's progress in the database passed 55% and restarted (tests/faults/resume.py): with a
SIGKILL of the whole process group (a crash, `docker kill`), and with a SIGTERM whose grace
is too short for the job to finish (a container update): the job is handed back with the
checkpoint it stored and the next start continues from it. The attempt after the restart must
transcribe at most 0.6 of the audio (it continues from the checkpoint) and write the
same words as the unbroken run.

"The same words", bounded: the default (sequential) pipeline decodes 30 s windows that
move on with the words, so the resumed run's first window starts at the checkpoint's
pause, where the unbroken run's window started a little earlier. A word next to the
seam may then be heard differently (seen: "weekdays" for "weekends", "six" for "6", "you
ask" for "you. Ask"), and the windows after it may stay shifted against the unbroken
run's, exactly as after the quiet points where a long film is cut into chunks. Measured
word error rates against the unbroken run: 1.3% and 2.7%. No sentence may be lost or
doubled: the word counts match within 3%, and at most 5% of the words differ.
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
    word_error_rate,
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

    assert abs(len(killed.words) - len(unbroken_run.words)) <= 0.03 * len(unbroken_run.words), measured.word_diff()
    assert word_error_rate(unbroken_run.words, killed.words) <= 0.05, measured.word_diff()
