"""WHISPER_EXTRA_ARGS: extra faster-whisper ``transcribe()`` arguments, checked at start-up; the VAD options.

The names come from the installed faster-whisper itself (``inspect`` on
``WhisperModel.transcribe``, plus ``batch_size`` of the batched pipeline that
QUALITY=fast uses), so a typo or an argument this version does not know stops
start-up with one line instead of failing every job. Values are checked
against the same signature's type annotations, JSON style: ``5`` is an
integer, ``5.0`` and ``"5"`` are not.

A few arguments are reserved: the service sets them itself, and a value from
the configuration would break it or be silently overwritten (see RESERVED).

Policy, not engine: the settings check WHISPER_EXTRA_ARGS with it, so importing it loads no faster-whisper.
Only `_parameters`, which reads the installed signature, imports faster-whisper, and only when there are
arguments to check.
"""

from __future__ import annotations

import inspect
import json
import math
import types
import typing
from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, dataclass, fields
from functools import cache
from typing import TYPE_CHECKING, Any

import structlog
from pydantic import TypeAdapter, ValidationError

from transcriptarr.policy.capabilities import translation_warning

if TYPE_CHECKING:
    from transcriptarr.settings import Settings

log = structlog.get_logger(__name__)

__all__ = [
    "RESERVED",
    "VadParameters",
    "ignored_arguments",
    "parse_extra_args",
    "valid_names",
    "warn_about_whisper_settings",
]


@dataclass(frozen=True)
class VadParameters:
    """Silero VAD options (``faster_whisper.vad.VadOptions``): the presets', and what ``vad_parameters`` may set."""

    threshold: float = 0.5
    # Blips shorter than this (clicks, a door) are not speech; Silero's default.
    min_speech_duration_ms: int = 250
    # Pauses shorter than this stay in the audio, so sentences keep their context.
    min_silence_duration_ms: int = 2000
    # Keeps soft word onsets and endings that the detector cuts too tightly.
    speech_pad_ms: int = 400

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


RESERVED: Mapping[str, str] = types.MappingProxyType(
    {
        "audio": "the service passes the audio itself",
        "language": "the service sets it per file (FORCE_LANGUAGE, the audio track's tag or detection)",
        "task": "TARGET_LANGUAGES (or the client's request) decides between transcribe and translate",
        "word_timestamps": "the subtitle cues are built from word times, so it is always on",
        "log_progress": "the service logs progress itself (PROGRESS_LOG_SECONDS)",
        "clip_timestamps": "the service cuts the audio into chunks itself, so clip times would not match",
        "language_detection_threshold": "the service detects the language itself (LANGUAGE_DETECT_* settings)",
        "language_detection_segments": "the service detects the language itself (LANGUAGE_DETECT_* settings)",
    }
)

# Text arguments that faster-whisper also accepts as token ids; from a configuration only text makes sense.
_TEXT_ONLY = frozenset({"initial_prompt", "hotwords", "prefix"})

# Values the annotations cannot express but faster-whisper fails on mid-job.
_LIMITS: Mapping[str, tuple[Callable[[Any], bool], str]] = types.MappingProxyType(
    {
        "beam_size": (lambda v: v >= 1, "at least 1"),
        "best_of": (lambda v: v >= 1, "at least 1"),
        "batch_size": (lambda v: v >= 1, "at least 1"),
        "patience": (lambda v: v > 0, "above 0"),
        "repetition_penalty": (lambda v: v > 0, "above 0"),
        "no_repeat_ngram_size": (lambda v: v >= 0, "0 or more"),
        "max_new_tokens": (lambda v: v is None or v >= 1, "at least 1"),
        "chunk_length": (lambda v: v is None or 1 <= v <= 30, "between 1 and 30 (seconds)"),
        "temperature": (lambda v: all(t >= 0 for t in (v if isinstance(v, list | tuple) else [v])), "0 or more"),
    }
)


@cache
def _parameters() -> Mapping[str, inspect.Parameter]:
    # Imported here: importing the settings must not load faster-whisper (and CTranslate2) for nothing.
    from faster_whisper import BatchedInferencePipeline, WhisperModel

    found = dict(inspect.signature(WhisperModel.transcribe).parameters)
    # batch_size exists only on the batched pipeline (QUALITY=fast); every other name is shared.
    found["batch_size"] = inspect.signature(BatchedInferencePipeline.transcribe).parameters["batch_size"]
    found.pop("self", None)
    return types.MappingProxyType(found)


def valid_names() -> list[str]:
    """The argument names WHISPER_EXTRA_ARGS may hold, sorted."""
    return sorted(name for name in _parameters() if name not in RESERVED)


def parse_extra_args(value: Any) -> dict[str, Any]:
    """A JSON object (text, from the environment) or a dict (from Python) -> checked arguments.

    Raises ``ValueError`` with one line that names the bad argument and says what to write instead.
    """
    if value is None or (isinstance(value, str) and not value.strip()):
        return {}
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except json.JSONDecodeError as exc:
            raise ValueError(
                f"not valid JSON ({exc.msg} at character {exc.pos}); "
                'write a JSON object such as {"repetition_penalty": 1.1, "no_repeat_ngram_size": 3}'
            ) from None
    if not isinstance(value, Mapping):
        raise ValueError(
            f"must be a JSON object of argument names and values, got {_json_kind(value)}; "
            'e.g. {"repetition_penalty": 1.1}'
        )
    return {str(name): _check(str(name), item) for name, item in value.items()}


def _check(name: str, value: Any) -> Any:
    if name in RESERVED:
        raise ValueError(f"argument '{name}' cannot be set here: {RESERVED[name]}")
    parameter = _parameters().get(name)
    if parameter is None:
        raise ValueError(f"unknown argument '{name}'; valid: {', '.join(valid_names())}")
    if name == "vad_parameters":
        return _check_vad(value)
    annotation = str if name in _TEXT_ONLY else parameter.annotation
    try:
        checked = TypeAdapter(annotation).validate_python(value, strict=True)
    except ValidationError:
        raise ValueError(
            f"argument '{name}' must be {_describe(annotation)}, got {_show(value)} ({_json_kind(value)})"
        ) from None
    if isinstance(checked, float) and not math.isfinite(checked):
        raise ValueError(f"argument '{name}' must be a finite number, got {value}")
    limit = _LIMITS.get(name)
    if limit is not None and not limit[0](checked):
        raise ValueError(f"argument '{name}' must be {limit[1]}, got {_show(value)}")
    return checked


def _check_vad(value: Any) -> dict[str, Any] | None:
    """vad_parameters: only the Silero options the service also uses for its own speech check."""
    if value is None:
        return None
    known = {item.name: item.type for item in fields(VadParameters)}
    if not isinstance(value, Mapping):
        raise ValueError(
            f"argument 'vad_parameters' must be an object with some of {', '.join(known)}, got {_json_kind(value)}"
        )
    checked: dict[str, Any] = {}
    for key, item in value.items():
        if key not in known:
            raise ValueError(f"argument 'vad_parameters' has unknown key '{key}'; valid: {', '.join(known)}")
        kind = int if key.endswith("_ms") else float
        ok = isinstance(item, int | float) and not isinstance(item, bool) and (kind is float or isinstance(item, int))
        if not ok or item < 0:
            wanted = "a whole number of milliseconds, 0 or more" if kind is int else "a number, 0 or more"
            raise ValueError(f"vad_parameters '{key}' must be {wanted}, got {_show(item)}")
        checked[key] = kind(item)
    return checked


_NAMES = {int: "an integer", float: "a number", bool: "true or false", str: "a string", dict: "an object"}


def _describe(annotation: Any) -> str:
    """A JSON-flavoured description of a type annotation: 'a number or a list of numbers'."""
    options: list[str] = []
    for part in typing.get_args(annotation) if _is_union(annotation) else (annotation,):
        text = _describe_one(part)
        if text and text not in options:
            options.append(text)
    return " or ".join(options) or "a value"


def _describe_one(part: Any) -> str:
    if part is type(None):
        return "null"
    if part in _NAMES:
        return _NAMES[part]
    origin = typing.get_origin(part)
    if origin in (list, tuple, Iterable) or (isinstance(origin, type) and issubclass(origin, Iterable)):
        args = [a for a in typing.get_args(part) if a is not Ellipsis]
        inner = _describe_one(args[0]) if args else "values"
        return f"a list of {inner.removeprefix('an ').removeprefix('a ')}s"
    return ""  # a class such as VadOptions: not writable in JSON anyway


def _is_union(annotation: Any) -> bool:
    return typing.get_origin(annotation) in (typing.Union, types.UnionType)


def _show(value: Any) -> str:
    try:
        return json.dumps(value)
    except (TypeError, ValueError):
        return repr(value)


def _json_kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, Mapping):
        return "an object"
    if isinstance(value, list | tuple):
        return "a list"
    return type(value).__name__


# Arguments the batched pipeline (QUALITY=fast) accepts but does not use (faster_whisper/transcribe.py).
IGNORED_BY_BATCHED = frozenset(
    {
        "prefix",
        "condition_on_previous_text",
        "prompt_reset_on_temperature",
        "max_initial_timestamp",
        "hallucination_silence_threshold",
    }
)


def ignored_arguments(extra_args: Mapping[str, Any], quality: str) -> list[str]:
    """The WHISPER_EXTRA_ARGS that have no effect with this QUALITY (batched or sequential pipeline)."""
    if str(quality) != "fast":
        return ["batch_size"] if "batch_size" in extra_args else []
    ignored = [name for name in extra_args if name in IGNORED_BY_BATCHED]
    temperature = extra_args.get("temperature")
    if isinstance(temperature, list | tuple) and len(temperature) > 1:
        ignored.append("temperature (all but its first value)")
    return ignored


def warn_about_whisper_settings(settings: Settings) -> None:
    """Start-up warnings for whisper settings that are valid but will not do what they seem to."""
    reason = translation_warning(settings.whisper_model, settings.target_languages)
    if reason is not None:
        log.warning("translation_unavailable", model=settings.whisper_model, reason=reason)
    quality = str(settings.quality)
    ignored = ignored_arguments(settings.whisper_extra_args, quality)
    if ignored:
        why = "only QUALITY=fast uses it" if quality != "fast" else "the batched pipeline of QUALITY=fast ignores them"
        log.warning(
            "whisper_args_ignored",
            arguments=ignored,
            quality=quality,
            reason=f"WHISPER_EXTRA_ARGS {', '.join(ignored)} has no effect: {why} (docs/presets.md)",
        )
