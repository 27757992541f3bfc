"""WHISPER_INITIAL_PROMPT, WHISPER_HOTWORDS and WHISPER_EXTRA_ARGS reach faster-whisper: a real job, real tiny.en.

QUALITY=fast decodes greedily at temperature 0 with no fallback, so the words are the same on every run.
Without these settings tiny.en writes JFK's sentence in full, in sentence case, with "Americans"
(tests/acceptance/test_engine.py). Each setting leaves its own mark on the subtitle. (Together, prompt
and hotwords interact: tiny.en then takes the prompt's words as already said and drops them.)
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from faster_whisper import decode_audio

from tests.acceptance.engine_harness import engine_settings, normalise, process, srt_text
from tests.media_factory import fixture_path, make_video
from transcriptarr.db.models import JobState
from transcriptarr.policy.whisper_options import parse_extra_args
from transcriptarr.workers.models import ModelKey, WhisperLoader
from transcriptarr.workers.presets import get_preset
from transcriptarr.workers.transcribe import SAMPLE_RATE, transcribe

pytestmark = pytest.mark.slow


def capitals(text: str) -> bool:
    # A prompt in capitals makes the model go on in capitals.
    return "ASK WHAT YOU CAN DO FOR YOUR COUNTRY" in text


def hotword_spelling(text: str) -> bool:
    return "Amerika" in text and "Americans" not in text


def cut_after_eight_tokens(text: str) -> bool:
    return text.rstrip(".") == "And so my fellow Americans"


@pytest.mark.parametrize(
    ("variable", "value", "mark"),
    [
        ("WHISPER_INITIAL_PROMPT", "AND SO MY FELLOW AMERICANS, ASK NOT", capitals),
        ("WHISPER_HOTWORDS", "Amerikans", hotword_spelling),
        ("WHISPER_EXTRA_ARGS", '{"max_new_tokens": 8}', cut_after_eight_tokens),
    ],
)
async def test_each_setting_from_the_environment_shapes_the_subtitle(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, variable: str, value: str, mark: Callable[[str], bool]
) -> None:
    (tmp_path / "lib").mkdir()
    movie = make_video(tmp_path / "lib" / "Kennedy.mkv", [(fixture_path("jfk.flac"), "eng", True)])
    monkeypatch.setenv(variable, value)
    settings = engine_settings(tmp_path, quality="fast")

    [job] = await process(settings, [movie], quality=settings.quality)  # as the library queues it

    assert job.state == JobState.COMPLETED, job.error
    cues, _ = srt_text(tmp_path / "lib" / "Kennedy.en.srt")
    text = " ".join(" ".join(cue.content.split()) for cue in cues)
    assert mark(text), text


def test_fast_quality_with_vad_turned_off_still_transcribes_past_30_seconds(tmp_path: Path) -> None:
    # WHISPER_EXTRA_ARGS {"vad_filter": false} (or a Bazarr client's vad_filter=false) with QUALITY=fast: the
    # batched pipeline finds no windows by itself without VAD ("No clip timestamps found"); we give it 30 s ones.
    model = WhisperLoader(model_dir=tmp_path, offline=True, cpu_threads=2)(
        ModelKey("bundled:tiny.en", "cpu", 0, "int8")
    )
    jfk = decode_audio(str(fixture_path("jfk.flac")), sampling_rate=SAMPLE_RATE)
    audio = np.concatenate([jfk, jfk, jfk])  # 33 s: two windows
    preset = get_preset("fast").with_arguments(parse_extra_args('{"vad_filter": false}'))
    transcript = transcribe(model, [(0.0, audio)], duration=len(audio) / SAMPLE_RATE, language="en", preset=preset)
    assert transcript.speech is None
    assert normalise(transcript.text).count("fellow americans") == 3, transcript.text
    assert transcript.words[-1].end > 30
