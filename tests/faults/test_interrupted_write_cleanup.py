"""A subtitle write cut short by a kill leaves a temporary file; the job's next attempt removes it (issue #7).

Only the job that owns a subtitle's path writes it, so a temporary file named for that
path is from an earlier, interrupted attempt, whatever its age. Temporary files of other
subtitles in the folder may belong to writes in flight and are left alone while fresh.
About 3 s (one short real transcription).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.acceptance.engine_harness import engine_settings, process, srt_text
from tests.media_factory import make_video, speak
from transcriptarr.db.models import JobState
from transcriptarr.subtitles.writer import TEMP_MARKER, remove_stale_temp_files


def temp_file_of(subtitle: Path, suffix: str = "k2j4_x9a") -> Path:
    """What `write_atomic` leaves behind when it is killed mid-write."""
    path = subtitle.with_name(f".{subtitle.name}{TEMP_MARKER}{suffix}")
    path.write_text("1\n00:00:00,000 --> 00:00:01,0")
    return path


def test_only_for_removes_fresh_temp_files_of_that_subtitle_only(tmp_path: Path) -> None:
    ours = [temp_file_of(tmp_path / "Movie.en.srt", "a1"), temp_file_of(tmp_path / "Movie.en.srt", "b2")]
    others = [temp_file_of(tmp_path / "Movie.fr.srt"), temp_file_of(tmp_path / "Movie.en.srt.bak")]

    assert sorted(remove_stale_temp_files(tmp_path, only_for=tmp_path / "Movie.en.srt")) == sorted(ours)
    assert all(path.exists() for path in others)


@pytest.mark.slow
async def test_next_attempt_removes_what_a_killed_write_left(tmp_path: Path) -> None:
    library = tmp_path / "library"
    library.mkdir()
    speech = speak("The quick brown fox jumps over the lazy dog.", tmp_path / "fox.wav")
    movie = make_video(library / "Movie.mkv", [(speech, "eng", True)])
    subtitle = library / "Movie.en.srt"
    interrupted = temp_file_of(subtitle)  # seconds old, as after a kill and a quick restart
    in_flight = temp_file_of(library / "Other.en.srt")  # another file's write, maybe still going on

    (job,) = await process(engine_settings(tmp_path), [movie])

    assert job.state == JobState.COMPLETED and job.result_path == str(subtitle)
    cues, words = srt_text(subtitle)
    assert cues and "lazy dog" in words
    assert not interrupted.exists()
    assert in_flight.exists()
