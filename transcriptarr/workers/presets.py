"""Quality presets: the QUALITY setting (fast, balanced, best) as faster-whisper options.

Every preset is tuned against the well-known Whisper failure modes on films
and series: invented lines over silence or music ("Thanks for watching!"),
and repetition loops that swallow the rest of a file. See docs/presets.md.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from transcriptarr.policy.whisper_options import VadParameters

# Whisper's own fallback ladder: a window that fails the compression or
# log-probability check is decoded again at the next temperature.
_FALLBACK_TEMPERATURES = (0.0, 0.2, 0.4, 0.6, 0.8, 1.0)


@dataclass(frozen=True)
class Preset:
    """Decoding options of one quality level.

    ``batched`` selects faster-whisper's ``BatchedInferencePipeline``: it
    decodes ``batch_size`` 30-second windows of speech at once (fast, above all
    on a GPU) but ignores temperature fallback, ``condition_on_previous_text``
    and ``hallucination_silence_threshold``. ``transcribe`` re-applies the
    no-speech check to its segments afterwards.
    """

    name: str
    beam_size: int
    best_of: int
    patience: float = 1.0
    temperatures: tuple[float, ...] = _FALLBACK_TEMPERATURES
    batched: bool = False
    batch_size: int = 8
    vad_filter: bool = True
    vad: VadParameters = field(default_factory=VadParameters)
    # Feeding the previous text back in is the main cause of repetition loops.
    condition_on_previous_text: bool = False
    # A window counts as silent when no_speech_prob > this and avg_logprob < log_prob_threshold.
    no_speech_threshold: float | None = 0.6
    # gzip ratio above this = repetitive text: decode again at the next temperature.
    compression_ratio_threshold: float | None = 2.4
    log_prob_threshold: float | None = -1.0
    # Whisper's "skip silence before suspicious words" check. Off by default: with VAD
    # the silences are already gone, and on clear speech the check was seen to drop
    # whole 30 s windows of real words (tiny.en: 4 cues for 107 s of speech).
    hallucination_silence_threshold: float | None = None
    word_timestamps: bool = True
    # Further transcribe() arguments from WHISPER_EXTRA_ARGS, passed as given (see with_arguments).
    extra: tuple[tuple[str, Any], ...] = ()

    def with_arguments(self, arguments: Mapping[str, Any]) -> Preset:
        """This preset with checked WHISPER_EXTRA_ARGS applied on top (transcriptarr/policy/whisper_options.py).

        An argument the preset has a field for replaces that field, so that the
        service's own checks (the VAD speech test, the no-speech test) use the
        same values as faster-whisper; any other argument is passed through.
        """
        changes: dict[str, Any] = {}
        extra = dict(self.extra)
        for name, value in arguments.items():
            if name == "temperature":
                changes["temperatures"] = tuple(value) if isinstance(value, list | tuple) else (value,)
            elif name == "vad_parameters":
                changes["vad"] = dataclasses.replace(self.vad, **(value or {}))
            elif name in _ARGUMENT_FIELDS:
                changes[name] = value
            else:
                extra[name] = value
        return dataclasses.replace(self, **changes, extra=tuple(extra.items()))

    def transcribe_kwargs(self) -> dict[str, Any]:
        """Keyword arguments for ``WhisperModel.transcribe`` or ``BatchedInferencePipeline.transcribe``."""
        kwargs: dict[str, Any] = {
            "beam_size": self.beam_size,
            "best_of": self.best_of,
            "patience": self.patience,
            "temperature": list(self.temperatures),
            "vad_filter": self.vad_filter,
            # A dict, not VadOptions: the batched pipeline then caps each
            # speech chunk at its 30 s window instead of silently cutting it.
            "vad_parameters": self.vad.as_dict() if self.vad_filter else None,
            "condition_on_previous_text": self.condition_on_previous_text,
            "no_speech_threshold": self.no_speech_threshold,
            "compression_ratio_threshold": self.compression_ratio_threshold,
            "log_prob_threshold": self.log_prob_threshold,
            "word_timestamps": self.word_timestamps,
        }
        if self.batched:
            kwargs["batch_size"] = self.batch_size
        else:
            kwargs["hallucination_silence_threshold"] = self.hallucination_silence_threshold
        kwargs.update(self.extra)
        return kwargs


# transcribe() arguments that are Preset fields of the same name.
_ARGUMENT_FIELDS = frozenset(
    {
        "beam_size",
        "best_of",
        "patience",
        "batch_size",
        "vad_filter",
        "condition_on_previous_text",
        "no_speech_threshold",
        "compression_ratio_threshold",
        "log_prob_threshold",
        "hallucination_silence_threshold",
    }
)


FAST = Preset(
    name="fast",
    batched=True,
    beam_size=1,
    best_of=1,
    temperatures=(0.0,),
    # Short pauses split speech so that batches pack dense 30 s windows (faster-whisper's batched default).
    vad=VadParameters(min_silence_duration_ms=160),
    hallucination_silence_threshold=None,
)

BALANCED = Preset(name="balanced", beam_size=5, best_of=5)

BEST = Preset(
    name="best",
    beam_size=5,
    best_of=5,
    # Explore longer before settling on a beam: slower, fewer dropped words.
    patience=2.0,
    # Keep quieter speech (whispering, speech under music) the default threshold drops.
    vad=VadParameters(threshold=0.4),
)

PRESETS: MappingProxyType[str, Preset] = MappingProxyType({p.name: p for p in (FAST, BALANCED, BEST)})

DEFAULT_PRESET = BALANCED


def get_preset(name: str) -> Preset:
    """The preset called ``name`` (case-insensitive); ``ValueError`` lists the valid names."""
    try:
        return PRESETS[name.strip().lower()]
    except KeyError:
        raise ValueError(f"unknown quality {name!r}: use {', '.join(PRESETS)}") from None
