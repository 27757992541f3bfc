"""Which language is spoken: a vote of Whisper's language guess over windows of speech.

Whisper guesses the language from one 30 s window; on a film that window is
often an opening theme, a logo sting or a foreign-language cold open. So we
skip the first minutes when the file is long enough, keep only what the VAD
calls speech, and let several windows vote.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

import numpy as np
from faster_whisper import WhisperModel
from numpy.typing import NDArray

from transcriptarr.policy.whisper_options import VadParameters
from transcriptarr.workers.transcribe import SAMPLE_RATE, speech_regions

__all__ = ["LanguageGuess", "detect_language"]

# Shorter pauses than the transcription presets so music between lines is cut
# out, and less padding: the language model should hear voices, not the score.
_LANGUAGE_VAD = VadParameters(min_silence_duration_ms=500, speech_pad_ms=200)

# Audio is scanned this many seconds at a time, so a 20-minute chunk is not
# run through the VAD when the first minute already fills the windows.
_SCAN_SECONDS = 60.0


@dataclass(frozen=True)
class LanguageGuess:
    """The winning language code, its mean probability over the windows, and the votes."""

    code: str
    probability: float
    votes: dict[str, int] = field(default_factory=dict)


def detect_language(
    model: WhisperModel,
    audio: NDArray[np.float32] | Iterable[tuple[float, NDArray[np.float32]]],
    *,
    duration: float | None = None,
    window_seconds: float = 30.0,
    offset_seconds: float = 120.0,
    windows: int = 3,
    min_speech_seconds: float = 3.0,
) -> LanguageGuess | None:
    """Guess the spoken language of 16 kHz mono audio, or None when there is no speech.

    ``audio`` is a whole array or ``(offset, samples)`` chunks (then give
    ``duration``). The first ``offset_seconds`` are skipped when at least
    ``2 * windows * window_seconds`` remain after them, so that enough speech
    is likely left. Each window holds ``window_seconds`` of speech; a last
    partial window counts when it has ``min_speech_seconds``. Reads no more
    audio than it needs. Blocking: run it in a thread.
    """
    if not model.model.is_multilingual:
        return LanguageGuess("en", 1.0)  # an English-only model knows no other language
    chunks = [(0.0, audio)] if isinstance(audio, np.ndarray) else audio
    if duration is None and isinstance(audio, np.ndarray):
        duration = len(audio) / SAMPLE_RATE
    # Unknown length: no skipping, which costs robustness but never misses the only speech.
    long_enough = duration is not None and duration - offset_seconds >= 2 * windows * window_seconds
    start = offset_seconds if long_enough else 0.0
    picked = _speech_windows(chunks, start, window_seconds, windows, min_speech_seconds)
    if not picked:
        return None
    segments = math.ceil(window_seconds / 30.0)  # Whisper looks at 30 s per segment
    results = [dict(model.detect_language(audio=w, language_detection_segments=segments)[2]) for w in picked]
    return _vote(results)


def _vote(results: list[dict[str, float]]) -> LanguageGuess:
    """Most windows win; a tie goes to the higher summed probability."""
    tops = Counter(max(probs, key=probs.__getitem__) for probs in results)

    def score(code: str) -> tuple[int, float]:
        return tops[code], sum(probs.get(code, 0.0) for probs in results)

    code = max(tops, key=score)
    probability = score(code)[1] / len(results)
    return LanguageGuess(code, float(probability), dict(tops))


def _speech_windows(
    chunks: Iterable[tuple[float, NDArray[np.float32]]],
    start: float,
    window_seconds: float,
    windows: int,
    min_speech_seconds: float,
) -> list[NDArray[np.float32]]:
    """Consecutive windows of VAD speech from ``start`` on; reads no further than needed."""
    size = round(window_seconds * SAMPLE_RATE)
    picked: list[NDArray[np.float32]] = []
    pending: list[NDArray[np.float32]] = []
    pending_len = 0
    for block in _blocks(chunks, start):
        for begin, end in speech_regions(block, _LANGUAGE_VAD):
            pending.append(block[round(begin * SAMPLE_RATE) : round(end * SAMPLE_RATE)])
            pending_len += len(pending[-1])
        while pending_len >= size and len(picked) < windows:
            joined = np.concatenate(pending)
            picked.append(joined[:size])
            pending, pending_len = [joined[size:]], len(joined) - size
        if len(picked) >= windows:
            return picked
    if pending_len >= min_speech_seconds * SAMPLE_RATE:
        picked.append(np.concatenate(pending))
    return picked


def _blocks(chunks: Iterable[tuple[float, NDArray[np.float32]]], start: float) -> Iterator[NDArray[np.float32]]:
    """The audio from ``start`` on, in blocks of at most ``_SCAN_SECONDS``."""
    block_len = round(_SCAN_SECONDS * SAMPLE_RATE)
    for offset, samples in chunks:
        first = max(0, round((start - offset) * SAMPLE_RATE))
        for i in range(first, len(samples), block_len):
            yield samples[i : i + block_len]
