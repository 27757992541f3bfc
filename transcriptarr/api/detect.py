"""detect-language: a fast path beside the queue, from the first minutes of the upload.

Bazarr asks this before it asks for a transcription and waits with a short
patience, so it never queues behind transcriptions: the model is borrowed
from the shared ModelManager and run in a thread. Only the first
`detect_max_seconds` of audio are decoded; the language vote skips an intro
when there is enough audio after it (see workers/language.py).
"""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path
from typing import Any

import numpy as np
import structlog
from numpy.typing import NDArray

from transcriptarr.media.audio import SAMPLE_RATE, decode_pcm_bytes
from transcriptarr.media.probe import ffmpeg_path_arg, stderr_tail
from transcriptarr.policy.languages import whisper_code, whisper_name
from transcriptarr.workers.language import LanguageGuess, detect_language
from transcriptarr.workers.presets import VadParameters
from transcriptarr.workers.transcribe import speech_regions

log = structlog.get_logger(__name__)

# Same VAD as the language vote: voices, not music.
_SPEECH_VAD = VadParameters(min_silence_duration_ms=500, speech_pad_ms=200)
_MIN_SPEECH_SECONDS = 2.0
_BLOCK_SECONDS = 60
_DECODE_TIMEOUT = 120.0


class DecodeError(Exception):
    pass


async def decode_head(path: Path, seconds: float) -> NDArray[np.float32]:
    """The first `seconds` of any audio/video file as 16 kHz mono float32 (ffmpeg)."""
    args = [
        "ffmpeg", "-nostdin", "-hide_banner", "-nostats", "-v", "error",
        "-i", ffmpeg_path_arg(path), "-t", f"{seconds:g}", "-vn", "-sn", "-dn",
        "-ac", "1", "-ar", str(SAMPLE_RATE), "-c:a", "pcm_s16le", "-f", "s16le", "pipe:1",
    ]  # fmt: skip
    proc = await asyncio.create_subprocess_exec(
        *args, stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    try:
        out, err = await asyncio.wait_for(proc.communicate(), _DECODE_TIMEOUT)
    except BaseException:
        with contextlib.suppress(ProcessLookupError):
            proc.kill()
        await proc.wait()
        raise
    if proc.returncode != 0 or not out:
        raise DecodeError(f"ffmpeg could not decode the upload: {stderr_tail(err) or 'no audio'}")
    return decode_pcm_bytes(out)


def has_speech(samples: NDArray[np.float32]) -> bool:
    """At least a couple of seconds of voice (read block by block, stops early)."""
    block = _BLOCK_SECONDS * SAMPLE_RATE
    found = 0.0
    for start in range(0, len(samples), block):
        found += sum(end - begin for begin, end in speech_regions(samples[start : start + block], _SPEECH_VAD))
        if found >= _MIN_SPEECH_SECONDS:
            return True
    return False


def guess_language(model: Any, samples: NDArray[np.float32]) -> LanguageGuess | None:
    """Blocking. An English-only model can only say English, and only when it hears speech."""
    if len(samples) == 0:
        return None
    if not model.model.is_multilingual:
        return LanguageGuess("en", 1.0) if has_speech(samples) else None
    return detect_language(model, samples)


def answer(guess: LanguageGuess | None) -> dict[str, Any]:
    """Bazarr's shape, or `{}`: it can map only Whisper codes and names (yue is zh to it)."""
    if guess is None:
        return {}
    code = "zh" if guess.code == "yue" else whisper_code(guess.code)
    name = whisper_name(code)
    if code is None or name is None:
        return {}
    return {"language_code": code, "detected_language": name, "confidence": round(guess.probability, 4)}
