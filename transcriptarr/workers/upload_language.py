"""POST /detect-language's inference: the language of an upload's first minutes, beside the queue.

Bazarr asks this before it asks for a transcription and waits with a short patience, so it never
queues behind transcriptions: the model is borrowed from the shared ModelManager and run in a
thread, off the event loop. The HTTP layer gets `UploadLanguage` as a plain callable
(api/dependencies.py: `DetectLanguage`) from the composition root.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from transcriptarr.policy.whisper_options import VadParameters
from transcriptarr.workers.language import LanguageGuess, detect_language
from transcriptarr.workers.memory import return_freed_memory
from transcriptarr.workers.models import ModelManager
from transcriptarr.workers.transcribe import SAMPLE_RATE, speech_regions

# Same VAD as the language vote: voices, not music.
_SPEECH_VAD = VadParameters(min_silence_duration_ms=500, speech_pad_ms=200)
_MIN_SPEECH_SECONDS = 2.0
_BLOCK_SECONDS = 60


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


@dataclass(frozen=True)
class UploadLanguage:
    """The language heard in 16 kHz mono samples with the service's model (WHISPER_MODEL), or None."""

    models: ModelManager
    model: str

    async def __call__(self, samples: NDArray[np.float32]) -> LanguageGuess | None:
        async with self.models.acquire(self.model) as whisper:
            guess = await asyncio.to_thread(guess_language, whisper, samples)
            # Its buffers (VAD over up to DETECT_LANGUAGE_MAX_SECONDS) would stay in glibc's per-thread heaps.
            await asyncio.to_thread(return_freed_memory)
        return guess
