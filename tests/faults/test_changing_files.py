"""Files that change under the service are transcribed as they end up, never from a stale state (issue #16, part 2).

The real service (`python -m transcriptarr run`, bundled tiny.en, the library watcher on)
and real ffmpeg-made media:

- a copy that stalls halfway for longer than LIBRARY_STABLE_SECONDS: the mkv header
  already holds the full duration, so the file looks whole; the library sees that only
  half of it can be read and waits; once the copy is done it is transcribed, to the end.
  Before the fix it was transcribed from half a file and never again.
- `mv -f other.mkv p.mkv` while p.mkv is being transcribed: the job notices that the file
  changed (size, mtime, inode) before writing, drops its result and is queued again; the
  subtitle that ends up there is made from the new content.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import srt

from tests.acceptance.engine_harness import long_speech
from tests.faults.chaos import ServiceRun, event_is, service_env
from tests.media_factory import concat_audio, make_silence, make_video, media_duration, speak

pytestmark = pytest.mark.slow

Event = dict[str, object]


@pytest.fixture
def service(tmp_path: Path) -> Iterator[Callable[[], ServiceRun]]:
    runs: list[ServiceRun] = []

    def start() -> ServiceRun:
        env = service_env(f"sqlite:///{tmp_path / 'service.db'}", tmp_path / "lib", tmp_path / "data", tmp_path / "m")
        env.update(LIBRARY_STABLE_SECONDS="1", LOG_LEVEL="debug", MAX_RETRIES="4", WORKER_NICE="0")
        run = ServiceRun(env, tmp_path, tmp_path / "service.jsonl")
        runs.append(run)
        return run

    (tmp_path / "lib").mkdir()
    yield start
    for run in runs:
        run.stop()


def wait(run: ServiceRun, wanted: Callable[[Event], bool], what: str, seen: list[Event], timeout: float = 120) -> Event:
    """The first log line `wanted` accepts; every line read on the way is kept in `seen`."""

    def keep(event: Event) -> bool:
        seen.append(event)
        return wanted(event)

    event = run.wait_for(keep, timeout)
    if event is None:
        pytest.fail(f"no {what} within {timeout:g} s; the service's log: {run.log_path}")
    return event


def cues_of(path: Path) -> list[srt.Subtitle]:
    return list(srt.parse(path.read_text(encoding="utf-8")))


def completed_jobs(db: Path) -> list[tuple[int, str | None]]:
    with sqlite3.connect(db) as conn:
        return list(conn.execute("SELECT id, result_path FROM jobs WHERE state = 'completed' ORDER BY id"))


def test_a_copy_that_stalls_halfway_waits_and_is_transcribed_whole(
    service: Callable[[], ServiceRun], tmp_path: Path
) -> None:
    words = tmp_path / "words"
    words.mkdir()
    opening = speak("The first words are at the start.", words / "a.wav")
    closing = speak("These are the closing words of the film.", words / "b.wav")
    audio = concat_audio(words / "all.wav", [opening, make_silence(words / "gap.wav", 60.0), closing])
    movie = make_video(words / "Movie.mkv", [(audio, "eng", True)])
    length = media_duration(movie)
    data = movie.read_bytes()

    run = service()
    seen: list[Event] = []
    wait(run, event_is("scan_finished"), "start-up scan", seen)
    target = tmp_path / "lib" / "Movie.mkv"
    with target.open("wb") as copy:
        copy.write(data[: len(data) // 2])
        copy.flush()
        # The copy stalls: longer than the stability window, the library looks at it and waits.
        decided = wait(
            run,
            lambda e: e.get("event") == "file_decided" and e.get("path") == str(target),
            "decision on the half-copied file",
            seen,
        )
        assert "still being written" in str(decided["reason"]), decided
        assert not decided["queue"]
        assert not [e for e in seen if e.get("event") == "job_started"], "nothing may start from half a file"
        copy.write(data[len(data) // 2 :])
    written = wait(run, event_is("subtitle_written"), "the subtitle", seen, timeout=180)
    subtitle = Path(str(written["subtitle"]))
    assert subtitle == tmp_path / "lib" / "Movie.en.srt"
    cues = cues_of(subtitle)
    text = " ".join(cue.content for cue in cues).lower()
    assert "first words" in text and "closing words" in text, text
    assert cues[-1].start.total_seconds() > length - 10, (cues[-1], length)
    assert len([e for e in seen if e.get("event") == "job_started"]) == 1, "one job, from the whole file"


def test_a_file_replaced_during_its_transcription_is_transcribed_again(
    service: Callable[[], ServiceRun], tmp_path: Path
) -> None:
    media = tmp_path / "media"
    media.mkdir()
    long_one = make_video(media / "long.mkv", [(long_speech(media, 12), "eng", True)])
    story = speak("A short and different story about a green lighthouse.", media / "o.wav")
    other = make_video(media / "other.mkv", [(story, "eng", True)])
    other_length = media_duration(other)
    target = tmp_path / "lib" / "p.mkv"
    os.link(long_one, target)

    run = service()
    seen: list[Event] = []
    wait(run, event_is("job_stage", stage="transcribing", path=str(target)), "the transcription of p.mkv", seen)
    staged = tmp_path / "lib" / ".other.mkv"  # hidden: the library does not take it for media of its own
    os.link(other, staged)
    os.replace(staged, target)  # mv -f other.mkv p.mkv

    failed = wait(run, event_is("job_failed"), "the job noticing the change", seen)
    assert "changed while it was transcribed" in str(failed["error"]), failed
    assert failed["next_state"] == "queued" and not failed["permanent"]
    written = wait(run, event_is("subtitle_written"), "the subtitle of the new content", seen, timeout=180)
    subtitle = Path(str(written["subtitle"]))
    cues = cues_of(subtitle)
    text = " ".join(cue.content for cue in cues).lower()
    assert {"short", "different", "story", "green", "lighthouse"} & set(text.replace(".", " ").split()), text
    assert cues[-1].end.total_seconds() <= other_length + 0.5, (cues[-1], other_length)
    wait(run, event_is("job_finished", result="completed"), "the completed job to be stored", seen)
    assert [path for _, path in completed_jobs(tmp_path / "service.db")] == [str(subtitle)]
    with sqlite3.connect(tmp_path / "service.db") as conn:
        [(attempts,)] = conn.execute("SELECT attempts FROM jobs WHERE state = 'completed'")
    assert attempts == 1, "a file replaced under the job costs none of its MAX_RETRIES"
