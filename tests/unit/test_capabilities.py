"""Which Whisper models can translate, judged from WHISPER_MODEL as users write it."""

from __future__ import annotations

import subprocess
import sys

import pytest

from transcriptarr.policy.capabilities import model_base_name, translation_refusal, translation_warning

CANNOT = [
    # English-only models, however they are named
    ("tiny.en", "English-only"),
    ("base.en", "English-only"),
    ("small.en", "English-only"),
    ("medium.en", "English-only"),
    ("bundled:tiny.en", "English-only"),
    ("Systran/faster-whisper-small.en", "English-only"),
    ("/models/faster-whisper-medium.en/", "English-only"),
    ("C:\\models\\whisper-base.en", "English-only"),
    ("MEDIUM.EN", "English-only"),
    # turbo: fine-tuned on transcription data only
    ("turbo", "turbo"),
    ("large-v3-turbo", "turbo"),
    ("deepdml/faster-whisper-large-v3-turbo-ct2", "turbo"),
    ("mobiuslabsgmbh/faster-whisper-large-v3-turbo", "turbo"),
    ("/srv/models/large-v3-turbo", "turbo"),
    # distil-whisper: distilled on English transcription
    ("distil-large-v3", "distil-whisper"),
    ("distil-large-v2", "distil-whisper"),
    ("distil-medium.en", "English-only"),
    ("Systran/faster-distil-whisper-large-v3", "distil-whisper"),
]

CAN = [
    "tiny",
    "base",
    "small",
    "medium",
    "large",
    "large-v1",
    "large-v2",
    "large-v3",
    "bundled:base",
    "Systran/faster-whisper-large-v3",
    "/models/whisper-large-v2-ct2",
    "/models/enterprise-whisper",  # "en" inside a word is not the .en suffix
    "",
]


@pytest.mark.parametrize(("model", "kind"), CANNOT)
def test_models_that_cannot_translate_are_refused_with_the_model_and_what_to_do(model: str, kind: str) -> None:
    reason = translation_refusal(model)
    assert reason is not None
    assert f"'{model.strip()}'" in reason and kind in reason
    assert "set WHISPER_MODEL to a multilingual model such as small" in reason
    assert "\n" not in reason


@pytest.mark.parametrize("model", CAN)
def test_multilingual_models_can_translate(model: str) -> None:
    assert translation_refusal(model) is None


def test_the_model_name_is_the_last_path_part() -> None:
    assert model_base_name("Systran/faster-whisper-small.en") == "faster-whisper-small.en"
    assert model_base_name("bundled:tiny.en") == "tiny.en"
    assert model_base_name("/models/Large-V3-Turbo/") == "large-v3-turbo"


def test_the_start_up_warning_needs_english_among_the_targets_and_a_model_that_cannot_translate() -> None:
    warning = translation_warning("large-v3-turbo", ["original", "en"])
    assert warning is not None
    assert warning.startswith("TARGET_LANGUAGES asks for English subtitles, but the model 'large-v3-turbo'")
    assert translation_warning("large-v3-turbo", ["original"]) is None
    assert translation_warning("large-v3", ["en"]) is None
    for english in ("eng", "English", "en-US", "en_GB"):
        assert translation_warning("tiny.en", [english]) is not None


def test_the_module_is_light_enough_for_settings_and_http_handlers() -> None:
    code = (
        "import sys, transcriptarr.policy.capabilities; "
        "print(sorted(m for m in ('faster_whisper', 'aiohttp', 'ctranslate2') if m in sys.modules))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"
