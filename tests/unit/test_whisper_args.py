"""WHISPER_INITIAL_PROMPT, WHISPER_HOTWORDS and WHISPER_EXTRA_ARGS: checked at start-up, applied to every job.

The names and types are checked against the installed faster-whisper's own signature.
"""

from __future__ import annotations

import inspect
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import structlog
from faster_whisper import BatchedInferencePipeline, WhisperModel

from transcriptarr.db.models import Job, Task
from transcriptarr.policy.plans import Plan, plan_task
from transcriptarr.policy.whisper_options import (
    RESERVED,
    VadParameters,
    ignored_arguments,
    parse_extra_args,
    valid_names,
    warn_about_whisper_settings,
)
from transcriptarr.service import engine_config
from transcriptarr.settings import ConfigError, load_settings
from transcriptarr.workers.job_runner import _preset_for
from transcriptarr.workers.presets import BALANCED, FAST


def config_error(monkeypatch: pytest.MonkeyPatch, **env: str) -> str:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(ConfigError) as caught:
        load_settings()
    message = str(caught.value)
    assert "\n" not in message
    return message


# --------------------------------------------------------------------------- reading the setting


def test_a_json_object_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WHISPER_EXTRA_ARGS", '{"repetition_penalty": 1.1, "no_repeat_ngram_size": 3}')
    assert load_settings().whisper_extra_args == {"repetition_penalty": 1.1, "no_repeat_ngram_size": 3}


def test_a_dict_from_python_and_from_a_dotenv_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    settings = load_settings(whisper_extra_args={"beam_size": 3, "temperature": [0, 0.4]})
    assert settings.whisper_extra_args == {"beam_size": 3, "temperature": [0.0, 0.4]}
    monkeypatch.chdir(tmp_path)
    (tmp_path / ".env").write_text('WHISPER_EXTRA_ARGS={"patience": 1.5}\nWHISPER_HOTWORDS=Westeros\n')
    settings = load_settings()
    assert (settings.whisper_extra_args, settings.whisper_hotwords) == ({"patience": 1.5}, "Westeros")


def test_empty_values_mean_nothing_set(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("WHISPER_EXTRA_ARGS", "WHISPER_INITIAL_PROMPT", "WHISPER_HOTWORDS"):
        monkeypatch.setenv(name, " ")
    settings = load_settings()
    assert (settings.whisper_extra_args, settings.whisper_initial_prompt, settings.whisper_hotwords) == ({}, None, None)
    assert load_settings(whisper_extra_args="{}").whisper_extra_args == {}


def test_config_check_shows_the_arguments_as_json() -> None:
    shown = load_settings(whisper_extra_args={"repetition_penalty": 1.1}).masked()
    assert shown["WHISPER_EXTRA_ARGS"] == '{"repetition_penalty": 1.1}'
    assert load_settings().masked()["WHISPER_EXTRA_ARGS"] == ""


# --------------------------------------------------------------------------- one clear line per mistake


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ('{"foo": 1}', "WHISPER_EXTRA_ARGS: unknown argument 'foo'; valid: append_punctuations, batch_size, "),
        ('{"beam_size": "5"}', "WHISPER_EXTRA_ARGS: argument 'beam_size' must be an integer, got \"5\" (a string)"),
        ('{"beam_size": 5.0}', "WHISPER_EXTRA_ARGS: argument 'beam_size' must be an integer, got 5.0 (a number)"),
        ('{"beam_size": true}', "WHISPER_EXTRA_ARGS: argument 'beam_size' must be an integer, got true (a boolean)"),
        ('{"beam_size": 0}', "WHISPER_EXTRA_ARGS: argument 'beam_size' must be at least 1, got 0"),
        (
            '{"temperature": [0, "hot"]}',
            "WHISPER_EXTRA_ARGS: argument 'temperature' must be a number or a list of numbers, got [0, \"hot\"]",
        ),
        (
            '{"suppress_tokens": "-1"}',
            "WHISPER_EXTRA_ARGS: argument 'suppress_tokens' must be a list of integers or null, got \"-1\"",
        ),
        (
            '{"condition_on_previous_text": "True"}',
            "WHISPER_EXTRA_ARGS: argument 'condition_on_previous_text' must be true or false, got \"True\"",
        ),
        ('{"initial_prompt": [1, 2]}', "WHISPER_EXTRA_ARGS: argument 'initial_prompt' must be a string, got [1, 2]"),
        (
            '{"vad_parameters": {"threshold": 0.3, "window": 512}}',
            "WHISPER_EXTRA_ARGS: argument 'vad_parameters' has unknown key 'window'; valid: threshold, "
            "min_speech_duration_ms, min_silence_duration_ms, speech_pad_ms",
        ),
        (
            '{"vad_parameters": {"min_silence_duration_ms": 0.5}}',
            "WHISPER_EXTRA_ARGS: vad_parameters 'min_silence_duration_ms' must be a whole number of milliseconds",
        ),
        ('{"language": "en"}', "WHISPER_EXTRA_ARGS: argument 'language' cannot be set here: the service sets it"),
        ('{"task": "translate"}', "WHISPER_EXTRA_ARGS: argument 'task' cannot be set here: TARGET_LANGUAGES"),
        ('{"word_timestamps": false}', "WHISPER_EXTRA_ARGS: argument 'word_timestamps' cannot be set here"),
        ("{beam_size: 5}", "WHISPER_EXTRA_ARGS: not valid JSON (Expecting property name enclosed in double quotes"),
        ("[1, 2]", "WHISPER_EXTRA_ARGS: must be a JSON object of argument names and values, got a list"),
        ("beam_size=5", "WHISPER_EXTRA_ARGS: not valid JSON"),
    ],
)
def test_a_bad_argument_is_one_line_naming_it(monkeypatch: pytest.MonkeyPatch, value: str, message: str) -> None:
    assert config_error(monkeypatch, WHISPER_EXTRA_ARGS=value).startswith(message)


def test_the_prompt_set_twice_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    message = config_error(monkeypatch, WHISPER_INITIAL_PROMPT="Westeros", WHISPER_EXTRA_ARGS='{"initial_prompt": "x"}')
    assert message == (
        "WHISPER_EXTRA_ARGS: 'initial_prompt' is also set as WHISPER_INITIAL_PROMPT; keep one of the two"
    )


def test_the_cli_stops_with_status_2_and_the_line(tmp_path: Path) -> None:
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "WHISPER_EXTRA_ARGS": '{"best_off": 5}'}
    result = subprocess.run(
        [sys.executable, "-m", "transcriptarr", "status"], cwd=tmp_path, env=env, capture_output=True, text=True
    )
    assert result.returncode == 2
    assert result.stderr.startswith("configuration error: WHISPER_EXTRA_ARGS: unknown argument 'best_off'; valid: ")
    assert len(result.stderr.strip().splitlines()) == 1 and "Traceback" not in result.stderr


# --------------------------------------------------------------------------- the names come from faster-whisper


def test_every_valid_name_is_a_real_transcribe_argument_and_reserved_ones_are_refused() -> None:
    sequential = set(inspect.signature(WhisperModel.transcribe).parameters)
    batched = set(inspect.signature(BatchedInferencePipeline.transcribe).parameters)
    names = set(valid_names())
    assert names <= (sequential | batched) - {"self"}
    assert names == (sequential | {"batch_size"}) - {"self"} - set(RESERVED)
    assert {"initial_prompt", "hotwords", "repetition_penalty", "no_repeat_ngram_size", "suppress_tokens"} <= names
    for name in RESERVED:
        with pytest.raises(ValueError, match=f"argument '{name}' cannot be set here: "):
            parse_extra_args({name: None})


def test_values_keep_their_json_types() -> None:
    args = parse_extra_args(
        '{"max_new_tokens": null, "hallucination_silence_threshold": 2, "prefix": "Previously:", '
        '"suppress_tokens": [-1, 50257], "vad_parameters": {"threshold": 0.35, "speech_pad_ms": 200}}'
    )
    assert args == {
        "max_new_tokens": None,
        "hallucination_silence_threshold": 2.0,
        "prefix": "Previously:",
        "suppress_tokens": [-1, 50257],
        "vad_parameters": {"threshold": 0.35, "speech_pad_ms": 200},
    }


# --------------------------------------------------------------------------- applied on top of the preset


def test_arguments_the_preset_has_replace_its_values_and_others_pass_through() -> None:
    preset = BALANCED.with_arguments(
        parse_extra_args(
            '{"beam_size": 2, "temperature": 0.2, "vad_parameters": {"threshold": 0.3}, '
            '"no_speech_threshold": 0.5, "repetition_penalty": 1.1, "no_repeat_ngram_size": 3}'
        )
    )
    assert (preset.beam_size, preset.temperatures, preset.no_speech_threshold) == (2, (0.2,), 0.5)
    # The service's own VAD check uses the same VAD values as faster-whisper.
    assert preset.vad == VadParameters(threshold=0.3)
    kwargs = preset.transcribe_kwargs()
    assert kwargs["beam_size"] == 2 and kwargs["temperature"] == [0.2]
    assert kwargs["vad_parameters"]["threshold"] == 0.3 and kwargs["vad_parameters"]["speech_pad_ms"] == 400
    assert (kwargs["repetition_penalty"], kwargs["no_repeat_ngram_size"]) == (1.1, 3)
    assert BALANCED.transcribe_kwargs()["beam_size"] == 5  # the preset itself is unchanged


def test_batch_size_reaches_only_the_batched_pipeline() -> None:
    args = parse_extra_args({"batch_size": 16})
    assert FAST.with_arguments(args).transcribe_kwargs()["batch_size"] == 16
    assert "batch_size" not in BALANCED.with_arguments(args).transcribe_kwargs()


def test_jobs_get_the_extra_arguments_and_a_clients_vad_choice_still_wins() -> None:
    args = parse_extra_args({"beam_size": 1, "vad_filter": True})
    assert _preset_for(Job(quality="best", options={}), args).beam_size == 1
    assert _preset_for(Job(quality="best", options={"vad_filter": False}), args).vad_filter is False


def test_the_engine_gets_the_library_wide_controls() -> None:
    settings = load_settings(
        whisper_initial_prompt="Tyrion, Cersei.", whisper_hotwords="Westeros", whisper_extra_args={"patience": 2}
    )
    config = engine_config(settings)
    assert (config.initial_prompt, config.hotwords, dict(config.extra_args)) == (
        "Tyrion, Cersei.",
        "Westeros",
        {"patience": 2.0},
    )


# --------------------------------------------------------------------------- start-up warnings


@pytest.mark.parametrize(
    ("quality", "args", "ignored"),
    [
        ("fast", {"prefix": "x", "beam_size": 2}, ["prefix"]),
        ("fast", {"temperature": [0.0, 0.2]}, ["temperature (all but its first value)"]),
        ("fast", {"temperature": 0.2, "batch_size": 4}, []),
        ("balanced", {"batch_size": 4, "prefix": "x"}, ["batch_size"]),
        ("best", {"condition_on_previous_text": True}, []),
    ],
)
def test_arguments_without_effect_for_the_quality(quality: str, args: dict[str, Any], ignored: list[str]) -> None:
    assert ignored_arguments(parse_extra_args(args), quality) == ignored


def test_start_up_warns_about_translation_and_ignored_arguments() -> None:
    settings = load_settings(
        whisper_model="large-v3-turbo",
        target_languages="original,en",
        quality="fast",
        whisper_extra_args={"condition_on_previous_text": True},
    )
    with structlog.testing.capture_logs() as logs:
        warn_about_whisper_settings(settings)
    events = {entry["event"]: entry for entry in logs}
    assert events["translation_unavailable"]["log_level"] == "warning"
    assert "'large-v3-turbo' is a turbo model" in events["translation_unavailable"]["reason"]
    assert events["whisper_args_ignored"]["arguments"] == ["condition_on_previous_text"]
    with structlog.testing.capture_logs() as logs:
        warn_about_whisper_settings(load_settings(whisper_model="small", target_languages="en"))
    assert logs == []


# --------------------------------------------------------------------------- translation planned per model


def test_translation_is_planned_only_with_a_model_that_can_translate() -> None:
    assert plan_task("ja", "en", "small") == Plan(Task.TRANSLATE, "ja", "en")
    assert plan_task("ja", "en", "bundled:tiny.en") == (
        "cannot translate ja audio into English: the model 'bundled:tiny.en' is an English-only model and cannot "
        "translate; set WHISPER_MODEL to a multilingual model such as small, medium or large-v3"
    )
    # English audio needs no translation, whatever the model.
    assert plan_task("en", "en", "turbo") == Plan(Task.TRANSCRIBE, "en", "en")
