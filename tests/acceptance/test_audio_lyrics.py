"""AUDIO_LYRICS on a real job: an mp3 in the library gets Song.lrc by default, Song.en.srt with the setting false,
and the library's own decision afterwards agrees with what the worker wrote (real tiny.en model)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.acceptance.engine_harness import JFK_TEXT, engine_settings, normalise, process, srt_text, wer
from tests.media_factory import fixture_path, run_tool
from transcriptarr.db.models import JobState
from transcriptarr.service import build

pytestmark = pytest.mark.slow

LRC_LINE = re.compile(r"^\[\d{2,}:\d{2}\.\d{2}\].*$")


def make_song(folder: Path) -> Path:
    """JFK's speech as an mp3 tagged English (SubGen's users' audiobooks and podcasts look like this)."""
    folder.mkdir()
    song = folder / "Song.mp3"
    flac = fixture_path("jfk.flac")
    run_tool(["ffmpeg", "-nostdin", "-v", "error", "-y", "-i", str(flac), "-metadata:s:a:0", "language=eng", str(song)])
    return song


@pytest.mark.parametrize(
    ("lyrics", "written", "decided_before", "decided_after"),
    [
        (True, "Song.lrc", "the job writes Song.lrc", "has lyrics: Song.lrc"),
        (
            False,
            "Song.en.srt",
            "as a video does (AUDIO_LYRICS=false)",
            "en: has English subtitles: Song.en.srt (written by Transcriptarr)",
        ),
    ],
)
async def test_an_mp3_gets_lyrics_or_a_subtitle_by_the_setting(
    tmp_path: Path, lyrics: bool, written: str, decided_before: str, decided_after: str
) -> None:
    song = make_song(tmp_path / "lib")
    settings = engine_settings(
        tmp_path,
        library_paths=[tmp_path / "lib"],
        library_audio_extensions="mp3",
        library_min_duration_seconds=0,  # JFK speaks for 11 s
        target_languages="en",
        audio_lyrics=lyrics,
    )
    async with build(settings) as parts:
        assert parts.library is not None
        before = await parts.library.explain(song)
    assert before.queue and any(decided_before in reason for reason in before.reasons), before.reasons

    [job] = await process(settings, [song])
    assert job.state == JobState.COMPLETED, job.error
    assert job.result_path == str(tmp_path / "lib" / written)
    assert sorted(p.name for p in (tmp_path / "lib").iterdir()) == sorted(["Song.mp3", written])
    if lyrics:
        lines = (tmp_path / "lib" / written).read_text(encoding="utf-8").splitlines()
        assert lines and all(LRC_LINE.match(line) for line in lines), lines
        words = normalise(" ".join(line.split("]", 1)[1] for line in lines))
    else:
        _, words = srt_text(tmp_path / "lib" / written)
    assert wer(JFK_TEXT, words) <= 0.15, words

    async with build(settings) as parts:
        assert parts.library is not None
        after = await parts.library.explain(song)
    assert not after.queue and any(decided_after in reason for reason in after.reasons), after.reasons
