"""Cues from real word timestamps: within every limit, and not one word lost or invented."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from pathlib import Path

import pytest
from faster_whisper import WhisperModel, decode_audio

from tests.acceptance.engine_harness import long_speech
from tests.media_factory import fixture_path
from transcriptarr.subtitles.cues import DEFAULT_RULES, Cue, build_cues
from transcriptarr.workers.bundled_models import tiny_en_path
from transcriptarr.workers.presets import get_preset
from transcriptarr.workers.transcribe import Transcript, transcribe

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def model() -> Iterator[WhisperModel]:
    yield WhisperModel(str(tiny_en_path()), device="cpu", compute_type="int8")


def words_of(text: str) -> list[str]:
    return text.split()


def assert_readable(cues: list[Cue], transcript: Transcript, duration: float) -> None:
    rules = DEFAULT_RULES
    assert cues, "no cues at all"
    for cue in cues:
        assert len(cue.lines) <= rules.max_lines, cue.lines
        assert all(len(line) <= rules.max_line_chars for line in cue.lines), cue.lines
        assert 0 <= cue.start < cue.end <= duration + 1e-6
        assert cue.end - cue.start <= rules.max_duration + 1e-6
    for cue, following in itertools.pairwise(cues):
        assert cue.end + rules.min_gap - 1e-6 <= following.start, (cue, following)
    # Nothing lost, nothing invented: the cues hold exactly the model's words, in order.
    model_words = words_of("".join(w.text for w in transcript.words))
    cue_words = words_of(" ".join(" ".join(cue.lines) for cue in cues))
    assert cue_words == model_words


@pytest.mark.parametrize("preset", ["balanced", "fast"])
def test_jfk_cues_are_readable_and_complete(model: WhisperModel, preset: str) -> None:
    audio = decode_audio(str(fixture_path("jfk.flac")))
    duration = len(audio) / 16000
    transcript = transcribe(model, [(0.0, audio)], duration=duration, language="en", preset=get_preset(preset))
    cues = build_cues(transcript.words, duration=duration, speech=transcript.speech)
    assert_readable(cues, transcript, duration)


@pytest.mark.parametrize("preset", ["balanced", "fast"])
def test_minutes_of_speech_give_readable_cues(model: WhisperModel, tmp_path: Path, preset: str) -> None:
    speech = long_speech(tmp_path, 36)  # about two and a half minutes
    audio = decode_audio(str(speech))
    duration = len(audio) / 16000
    assert duration > 120
    transcript = transcribe(model, [(0.0, audio)], duration=duration, language="en", preset=get_preset(preset))
    cues = build_cues(transcript.words, duration=duration, speech=transcript.speech)
    assert len(transcript.words) > 250
    assert_readable(cues, transcript, duration)
    # Raw Whisper segments are much longer than a readable cue; ours are not.
    assert max(c.end - c.start for c in cues) <= 7.0
    assert len(cues) > len(transcript.segments)
