"""Checkpoints of a running transcription: stored, found again, discarded when made from something else, resumed.

The file tests are fast; those that resume a real transcription use the bundled
tiny.en model at temperature 0 (deterministic words) on tests/data/jfk.flac (and, for
the sequential pipeline's windows, espeak-ng sentences around it).
"""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from faster_whisper import decode_audio
from structlog.testing import capture_logs

from tests.media_factory import concat_audio, fixture_path, make_silence, speak
from transcriptarr.db.models import Job
from transcriptarr.queue.leftovers import work_file_job
from transcriptarr.subtitles.cues import Word
from transcriptarr.subtitles.registry import MediaIdentity
from transcriptarr.workers.checkpoints import CheckpointFile, fingerprint, job_checkpoint
from transcriptarr.workers.models import ModelKey, ModelLoadError, WhisperLoader
from transcriptarr.workers.presets import get_preset
from transcriptarr.workers.transcribe import (
    SAMPLE_RATE,
    PartialTranscript,
    SegmentText,
    TranscriptionCancelled,
    _pause_between,
    transcribe,
)

DONE = PartialTranscript(
    offset=12.5,
    language="en",
    language_probability=0.97,
    words=(Word(1.0, 1.4, " Hello", 0.91), Word(1.5, 2.0, " world.", 0.8), Word(3.0, 3.2, " Ça", 0.5)),
    segments=(SegmentText(1.0, 2.0, "Hello world."), SegmentText(3.0, 3.2, "Ça")),
    speech=((0.6, 2.4), (2.6, 3.6)),
)


def made_from(media: Path, **changes: Any) -> dict[str, Any]:
    arguments: dict[str, Any] = {
        "source": media,
        "stream": 1,
        "model": "bundled:tiny.en",
        "task": "transcribe",
        "language": "en",
        "decoding": {"preset": "balanced", "arguments": {"temperature": (0.0,), "beam_size": 5}},
    }
    return fingerprint(**{**arguments, **changes})


@pytest.fixture
def media(tmp_path: Path) -> Path:
    path = tmp_path / "Film.mkv"
    path.write_bytes(b"not really a film")
    return path


def test_a_checkpoint_is_found_again_by_the_same_fingerprint(tmp_path: Path, media: Path) -> None:
    checkpoint = CheckpointFile.of_job(tmp_path, 7, made_from(media))
    checkpoint.save(DONE)
    assert checkpoint.path.name == "job-7.checkpoint.json"
    assert work_file_job(checkpoint.path.name) == 7, "the sweep of leftovers must know whose file it is"
    assert not list(tmp_path.glob("*.part")), "written atomically: no temporary file left"
    assert CheckpointFile.of_job(tmp_path, 7, made_from(media)).load() == DONE


def test_a_checkpoint_without_speech_regions_round_trips(tmp_path: Path, media: Path) -> None:
    checkpoint = CheckpointFile.of_job(tmp_path, 1, made_from(media))
    done = PartialTranscript(30.0, None, 1.0, (), (), None)
    checkpoint.save(done)
    assert checkpoint.load() == done


@pytest.mark.parametrize(
    ("change", "changed"),
    [
        ({"model": "bundled:base"}, "model"),
        ({"task": "translate"}, "task"),
        ({"language": "de"}, "language"),
        ({"stream": 2}, "stream"),
        ({"decoding": {"preset": "fast", "arguments": {}}}, "decoding"),
    ],
)
def test_a_checkpoint_made_with_other_settings_is_discarded(
    tmp_path: Path, media: Path, change: dict[str, Any], changed: str
) -> None:
    CheckpointFile.of_job(tmp_path, 3, made_from(media)).save(DONE)
    other = CheckpointFile.of_job(tmp_path, 3, made_from(media, **change))
    with capture_logs() as logs:
        assert other.load() is None
    assert not other.path.exists()
    (line,) = [entry for entry in logs if entry["event"] == "checkpoint_discarded"]
    assert line["job_id"] == 3
    assert line["reason"] == f"checkpoint was made from another file or settings (changed: {changed})"


def test_a_checkpoint_of_a_replaced_file_is_discarded(tmp_path: Path, media: Path) -> None:
    CheckpointFile.of_job(tmp_path, 3, made_from(media)).save(DONE)
    media.write_bytes(b"another film, another size")
    os.utime(media, ns=(1, 1))
    with capture_logs() as logs:
        assert CheckpointFile.of_job(tmp_path, 3, made_from(media)).load() is None
    assert "changed: mtime_ns, size" in logs[0]["reason"]


def test_a_checkpoint_names_the_file_as_the_job_saw_it_not_as_it_is_when_saved(tmp_path: Path, media: Path) -> None:
    # The job recorded the file, then `mv -f` replaced it before the first checkpoint: the words are
    # the old file's, so the checkpoint must carry the old identity and the next attempt drop it.
    info = media.stat()
    seen = MediaIdentity(info.st_size, info.st_mtime_ns, info.st_ino, info.st_dev)
    replacement = tmp_path / "other.mkv"
    replacement.write_bytes(b"the film that replaced it")
    os.replace(replacement, media)
    CheckpointFile.of_job(tmp_path, 4, made_from(media, seen=seen)).save(DONE)
    with capture_logs() as logs:
        assert CheckpointFile.of_job(tmp_path, 4, made_from(media)).load() is None
    assert "inode" in logs[0]["reason"]


def test_a_damaged_checkpoint_is_discarded_with_the_reason(tmp_path: Path, media: Path) -> None:
    checkpoint = CheckpointFile.of_job(tmp_path, 4, made_from(media))
    checkpoint.path.write_text('{"format": 1, "fingerprint": ', encoding="utf-8")  # torn by a power loss
    with capture_logs() as logs:
        assert checkpoint.load() is None
    assert logs[0]["event"] == "checkpoint_discarded"
    assert logs[0]["reason"].startswith("checkpoint is damaged (JSONDecodeError")
    assert not checkpoint.path.exists()


def test_a_checkpoint_that_cannot_be_written_is_logged_and_the_job_goes_on(tmp_path: Path, media: Path) -> None:
    not_a_folder = tmp_path / "work"
    not_a_folder.write_text("a file where the work folder should be")
    checkpoint = CheckpointFile.of_job(not_a_folder, 5, made_from(media))
    with capture_logs() as logs:
        checkpoint.save(DONE)  # does not raise
    (line,) = logs
    assert line["event"] == "checkpoint_not_written"
    assert line["checkpoint"] == str(checkpoint.path)
    assert "free space in the work folder" in line["hint"]


def test_a_job_checkpoint_names_the_file_the_job_reads(tmp_path: Path, media: Path) -> None:
    job = Job(id=9, media_path=str(media), options={})
    preset = get_preset("balanced").with_arguments({"temperature": 0.0})
    kwargs: dict[str, Any] = dict(
        stream=1, model="m", task="transcribe", language="en", preset=preset, initial_prompt=None, hotwords=None
    )
    checkpoint = job_checkpoint(tmp_path, job, **kwargs)
    assert checkpoint is not None
    assert checkpoint.fingerprint["source"] == str(media)
    assert checkpoint.fingerprint["decoding"]["arguments"]["temperature"] == [0.0]
    assert job_checkpoint(tmp_path, job, **{**kwargs, "hotwords": "Westeros"}) != checkpoint
    media.unlink()
    assert job_checkpoint(tmp_path, job, **kwargs) is None  # the job fails on the missing file by itself


# --- where a run may resume -----------------------------------------------------------------------------


def test_with_vad_a_run_resumes_at_the_start_of_the_next_speech_region() -> None:
    regions = [(0.0, 4.0), (5.5, 9.0), (9.0, 12.0)]
    assert _pause_between(3.6, 5.8, regions) == 5.5
    # Regions that touch (a short pause split between them) still make a pause.
    assert _pause_between(9.0, 9.3, regions) == 9.0
    # The next segment starts inside the same region, right after: speech goes on, no pause.
    assert _pause_between(5.9, 6.1, regions) is None
    assert _pause_between(3.0, 3.3, regions) is None
    # ... or after a pause that VAD kept inside the region: the middle of the gap.
    assert _pause_between(5.9, 7.1, regions) == pytest.approx(6.5)


def test_without_vad_a_run_resumes_in_the_middle_of_a_long_gap() -> None:
    assert _pause_between(3.0, 4.0, None) == 3.5
    assert _pause_between(3.0, 3.2, None) is None


# --- resuming a real transcription --------------------------------------------------------------------


@pytest.fixture(scope="module")
def tiny_en(tmp_path_factory: pytest.TempPathFactory) -> Any:
    try:
        return WhisperLoader(model_dir=tmp_path_factory.mktemp("models"), offline=True, cpu_threads=2)(
            ModelKey("bundled:tiny.en", "cpu", 0, "int8")
        )
    except ModelLoadError as exc:
        pytest.skip(str(exc))


def two_chunks() -> tuple[list[tuple[float, Any]], float]:
    """jfk.flac twice, as two chunks (the way a long film comes in), with a pause between."""
    jfk = decode_audio(str(fixture_path("jfk.flac")), sampling_rate=SAMPLE_RATE)
    first = np.concatenate([jfk, np.zeros(SAMPLE_RATE, dtype=np.float32)])
    return [(0.0, first), (len(first) / SAMPLE_RATE, jfk)], (len(first) + len(jfk)) / SAMPLE_RATE


def test_a_resumed_run_keeps_the_checkpoint_and_transcribes_only_the_rest(tiny_en: Any) -> None:
    chunks, duration = two_chunks()
    preset = get_preset("fast").with_arguments({"temperature": 0.0})
    saved: list[PartialTranscript] = []
    unbroken = transcribe(
        tiny_en, chunks, duration=duration, preset=preset, on_checkpoint=saved.append, checkpoint_seconds=5.0
    )
    assert [round(c.offset, 2) for c in saved] == [round(chunks[1][0], 2), round(duration, 2)]
    assert saved[-1].words == tuple(unbroken.words), "the last checkpoint holds the whole transcript"

    heard: list[float] = []  # the offsets of the chunks the model was given
    given = ((offset, samples) for offset, samples in chunks if not heard.append(offset))
    progress: list[float] = []
    resumed = transcribe(
        tiny_en, given, duration=duration, preset=preset, resume_from=saved[0], on_progress=progress.append
    )
    assert resumed.words == unbroken.words
    assert resumed.segments == unbroken.segments
    assert resumed.speech == unbroken.speech
    assert resumed.language == "en"
    assert progress[0] == pytest.approx(saved[0].offset / duration), "progress starts where the checkpoint was"
    # Nothing at all is left after the final checkpoint.
    again = transcribe(tiny_en, chunks, duration=duration, preset=preset, resume_from=saved[-1])
    assert again.words == unbroken.words


def test_a_cancelled_run_hands_out_the_last_pause_it_reached(tiny_en: Any) -> None:
    chunks, duration = two_chunks()
    chunks.append((duration, chunks[1][1]))  # a third chunk, which a shutdown keeps from being transcribed
    duration += len(chunks[1][1]) / SAMPLE_RATE
    preset = get_preset("fast").with_arguments({"temperature": 0.0})
    stop = threading.Event()
    saved: list[PartialTranscript] = []

    def progress(fraction: float) -> None:
        if fraction * duration > chunks[1][0]:  # into the second chunk: a shutdown comes
            stop.set()

    with pytest.raises(TranscriptionCancelled):
        transcribe(
            tiny_en,
            chunks,
            duration=duration,
            preset=preset,
            on_progress=progress,
            should_cancel=stop.is_set,
            on_checkpoint=saved.append,
            checkpoint_seconds=1000.0,  # no regular checkpoint: only the one the cancel hands out
        )
    # Stopped at the next boundary (the end of the second chunk), and handed out what was done up to it.
    assert [round(c.offset, 2) for c in saved] == [round(chunks[2][0], 2)]
    text = " ".join("".join(w.text for w in saved[0].words).split())
    assert text.count("fellow Americans") == 2


SENTENCES = (
    "The quick brown fox jumps over the lazy dog near the river bank.",
    "Good morning, the train to the city leaves at nine o'clock sharp.",
    "Rivers carry water from the mountains all the way down to the sea.",
    "The library opens at ten and closes at six on weekdays.",
    "A journey of a thousand miles begins with a single step.",
)


def test_a_sequential_run_resumed_at_any_checkpoint_hears_exactly_the_same_words(tiny_en: Any, tmp_path: Path) -> None:
    """The sequential pipeline's windows follow on from each other; a checkpoint names the window after it.

    About 45 s of speech in one chunk (two to three 30 s windows): every checkpoint of the
    unbroken run is taken where a window ends, and a run resumed from any of them decodes
    the same windows and hears the same words, not merely similar ones."""
    pause = make_silence(tmp_path / "pause.wav", 1.0)
    parts = [fixture_path("jfk.flac"), pause]
    for n, sentence in enumerate(SENTENCES):
        parts += [speak(sentence, tmp_path / f"{n}.wav"), pause]
    audio = decode_audio(str(concat_audio(tmp_path / "speech.wav", parts)), sampling_rate=SAMPLE_RATE)
    duration = len(audio) / SAMPLE_RATE
    preset = get_preset("balanced").with_arguments({"temperature": 0.0})
    saved: list[PartialTranscript] = []
    unbroken = transcribe(
        tiny_en, [(0.0, audio)], duration=duration, preset=preset, on_checkpoint=saved.append, checkpoint_seconds=1.0
    )
    inside = [checkpoint for checkpoint in saved if checkpoint.window is not None]
    assert inside, f"no checkpoint inside the chunk: {saved}"
    assert all(checkpoint.window is not None and checkpoint.window[1] > 0 for checkpoint in inside)

    expected = [word.text for word in unbroken.words]
    for checkpoint in inside:
        assert tuple(unbroken.words[: len(checkpoint.words)]) == checkpoint.words, "a checkpoint keeps the words so far"
        resumed = transcribe(tiny_en, [(0.0, audio)], duration=duration, preset=preset, resume_from=checkpoint)
        assert [word.text for word in resumed.words] == expected, f"resumed at {checkpoint.window}"
