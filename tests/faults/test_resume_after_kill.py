"""A SIGKILL part-way through a two-minute transcription costs at most one checkpoint interval, not the whole file.

The real service transcribes ~2 minutes of speech unbroken, then again with a SIGKILL
(the whole process group, as `docker kill` does) once the job's progress in the database
passed 65%, and a restart (tests/faults/resume.py). The attempt after the restart must
transcribe at most 0.6 of the audio (it continues from the checkpoint) and write the
same words as the unbroken run.

"The same words", bounded: the default (sequential) pipeline decodes 30 s windows that
move on with the words, so the resumed run's first window starts at the checkpoint's
pause, where the unbroken run's window started a little earlier. A word next to the
seam may then be heard differently (measured: "weekdays" for "weekends", "six" for "6"),
exactly as at the quiet points where a long film is cut into chunks. No word may be lost
or doubled: the word counts match within 2, and at most 3% of the words differ.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.faults.resume import CHECKPOINT_SECONDS, measure_resume, word_error_rate

pytestmark = pytest.mark.slow

KILL_AT = 0.65  # inside 55-80%; late enough that a checkpoint interval plus a window fit before it
WINDOW_SECONDS = 30.0  # the pause after a window's last segment is known once the next window is decoded


def test_restart_after_sigkill_continues_from_the_checkpoint(tmp_path: Path) -> None:
    if shutil.which("espeak-ng") is None:
        pytest.skip("espeak-ng is not installed (Debian package espeak-ng)")
    measured = measure_resume(tmp_path, kill_at=KILL_AT)
    print(measured.describe())
    killed, unbroken = measured.killed, measured.unbroken
    assert measured.duration >= 100, "the media should be about two minutes long"
    assert killed.progress_at_kill is not None and killed.progress_at_kill >= 0.55
    assert killed.resumed_from is not None, f"the attempt after the restart started over; logs: {measured.logs}"

    # At most one checkpoint interval (plus the window in flight) was done twice.
    redone = killed.progress_at_kill * measured.duration - killed.resumed_from
    assert redone <= CHECKPOINT_SECONDS + WINDOW_SECONDS, measured.describe()
    assert measured.second_attempt_ratio <= 0.6, measured.describe()

    assert abs(len(killed.words) - len(unbroken.words)) <= 2, (unbroken.words, killed.words)
    assert word_error_rate(unbroken.words, killed.words) <= 0.03, (unbroken.words, killed.words)
