"""What a Whisper model can do, judged from its name alone.

Kept free of heavy imports (no faster_whisper, no aiohttp) so that settings
checks, the library rules and the HTTP handlers can ask before any model is
loaded.

Three families cannot translate into English:

* English-only models (``tiny.en``, ``base.en``, ``bundled:tiny.en``,
  ``Systran/faster-whisper-small.en``, ...) only ever write English text;
* ``turbo`` / ``large-v3-turbo`` was fine-tuned on transcription data only, so
  it answers a translate task with a transcription in the spoken language;
* the ``distil-*`` models were distilled on English transcription only.

The name is the configured WHISPER_MODEL: a size name, ``bundled:NAME``, a
Hugging Face id ``owner/name`` or a local folder; only its last path part is
looked at.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

_MULTILINGUAL_HINT = "set WHISPER_MODEL to a multilingual model such as small, medium or large-v3"

# ".en" at the end (tiny.en, faster-whisper-small.en) or as a dotted/dashed part (small.en-ct2).
_ENGLISH_ONLY = re.compile(r"(^|[.\-_])en($|[.\-_])")
_TURBO = re.compile(r"(^|[.\-_])turbo($|[.\-_])")
_DISTIL = re.compile(r"(^|[.\-_])distil")


def model_base_name(model_name: str) -> str:
    """The part of WHISPER_MODEL that names the model: 'Systran/faster-whisper-small.en' -> 'faster-whisper-small.en'.

    Also used for local folders ('/models/large-v3-turbo/') and bundled names ('bundled:tiny.en').
    """
    name = model_name.strip().removeprefix("bundled:")
    name = name.replace("\\", "/").rstrip("/")
    return name.rsplit("/", 1)[-1].lower()


def translation_refusal(model_name: str) -> str | None:
    """None when ``model_name`` can translate to English, else a one-line reason with what to do."""
    name = model_base_name(model_name)
    if not name:
        return None
    if _ENGLISH_ONLY.search(name):
        why = "is an English-only model and cannot translate"
    elif _TURBO.search(name):
        why = "is a turbo model, trained without translation data, and cannot translate"
    elif _DISTIL.search(name):
        why = "is a distil-whisper model trained on English transcription only and cannot translate"
    else:
        return None
    return f"the model '{model_name.strip()}' {why}; {_MULTILINGUAL_HINT}"


def translation_warning(model_name: str, target_languages: Iterable[str]) -> str | None:
    """The start-up warning when TARGET_LANGUAGES asks for English subtitles the model cannot translate to."""
    if not any(_is_english(label) for label in target_languages):
        return None
    refusal = translation_refusal(model_name)
    if refusal is None:
        return None
    return (
        f"TARGET_LANGUAGES asks for English subtitles, but {refusal}; "
        "media with audio in another language get no English subtitles until then"
    )


def _is_english(label: str) -> bool:
    # Light on purpose (no language library): the names TARGET_LANGUAGES accepts for English.
    return re.split(r"[-_]", label.strip().lower(), maxsplit=1)[0] in ("en", "eng", "english")
