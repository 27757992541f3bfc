"""detect-language: a fast path beside the queue, from the first minutes of the upload.

Bazarr asks this before it asks for a transcription and waits with a short
patience, so it never queues behind transcriptions. Here: the upload's first
`detect_max_seconds` of audio decoded, and the answer in Bazarr's terms. The
inference (the shared model, run in a thread; the language vote skips an intro
when there is enough audio after it) is the engine's: workers/upload_language.py,
handed to the routes as `ApiDeps.detect_language`.
"""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path
from typing import Any

import numpy as np
import structlog
from numpy.typing import NDArray

from transcriptarr.api.dependencies import DetectedLanguage
from transcriptarr.media.audio import SAMPLE_RATE, decode_pcm_bytes
from transcriptarr.media.commands import decode_head_pcm
from transcriptarr.media.probe import stderr_tail
from transcriptarr.policy.languages import whisper_code, whisper_name

log = structlog.get_logger(__name__)

_DECODE_TIMEOUT = 120.0


class DecodeError(Exception):
    pass


async def decode_head(path: Path, seconds: float) -> NDArray[np.float32]:
    """The first `seconds` of any audio/video file as 16 kHz mono float32 (ffmpeg)."""
    proc = await asyncio.create_subprocess_exec(
        *decode_head_pcm(path, seconds, sample_rate=SAMPLE_RATE),
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
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


def answer(guess: DetectedLanguage | None) -> dict[str, Any]:
    """Bazarr's shape, or `{}`: it can map only Whisper codes and names (yue is zh to it)."""
    if guess is None:
        return {}
    code = "zh" if guess.code == "yue" else whisper_code(guess.code)
    name = whisper_name(code)
    if code is None or name is None:
        return {}
    return {"language_code": code, "detected_language": name, "confidence": round(guess.probability, 4)}
