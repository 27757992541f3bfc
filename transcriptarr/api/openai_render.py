"""A stored result (cues with their words) as OpenAI's audio routes answer: json, text, srt, verbose_json, vtt.

The queue stores one cue document per job (subtitles/stored.py), so every
format is rendered from the same result. `verbose_json` segments are our
cues (at most 2 lines and 7 s, like the sidecar subtitles), not Whisper's
30-second windows; Whisper's token ids are not kept, so `tokens` is empty,
`avg_logprob` is the mean log probability of the segment's words and
`no_speech_prob` is 0 (silence never becomes a cue).
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Collection, Sequence
from types import MappingProxyType
from typing import Any, Final

from aiohttp import web

from transcriptarr.policy.languages import whisper_name
from transcriptarr.policy.output_formats import content_type
from transcriptarr.subtitles.cues import Cue, join_lines
from transcriptarr.subtitles.formats import render

# OpenAI's response_format, its API's fixed list: json, text and verbose_json are OpenAI's own
# documents; the others are formats of policy/output_formats.py, rendered and typed as the table says.
FORMATS: Final = ("json", "text", "srt", "verbose_json", "vtt")
OPENAI_DOCUMENTS: Final = frozenset({"json", "text", "verbose_json"})
GRANULARITIES: Final = ("word", "segment")
_TEXT_TYPES: Final = MappingProxyType(
    {"text": "text/plain", **{name: content_type(name) for name in FORMATS if name not in OPENAI_DOCUMENTS}}
)
# log(0) is -inf, which JSON cannot carry; a word this unlikely is already a failed decode.
_MIN_PROBABILITY = 1e-6


def answer(
    cues: Sequence[Cue],
    language: str | None,
    *,
    response_format: str,
    task: str,
    duration: float | None,
    granularities: Collection[str] = (),
) -> web.Response:
    """200 with the result in `response_format` (one of FORMATS); no speech is an empty text, as OpenAI does."""
    text = transcript_text(cues)
    if response_format in _TEXT_TYPES:
        if response_format == "text":
            body = f"{text}\n" if text else ""
        else:
            body = render(cues, response_format, language=language)
        return web.Response(text=body, content_type=_TEXT_TYPES[response_format], charset="utf-8")
    seconds = duration if duration is not None else max((cue.end for cue in cues), default=0.0)
    usage = {"type": "duration", "seconds": math.ceil(seconds)}
    if response_format == "json":
        return web.json_response({"text": text, "usage": usage})
    document: dict[str, Any] = {
        "task": task,
        "language": whisper_name(language) or language or "",
        "duration": round(seconds, 3),
        "text": text,
    }
    if not granularities or "segment" in granularities:  # OpenAI: segments unless only words were asked for
        document["segments"] = [_segment(index, cue) for index, cue in enumerate(cues)]
    if "word" in granularities:
        document["words"] = [
            {"word": word.text.strip(), "start": _time(word.start), "end": _time(word.end)}
            for cue in cues
            for word in cue.words
            if word.text.strip()
        ]
    document["usage"] = usage
    return web.json_response(document)


def transcript_text(cues: Sequence[Cue]) -> str:
    """The whole transcript as one line of running text."""
    return join_lines([join_lines([line.strip() for line in cue.lines if line.strip()]) for cue in cues]).strip()


def _segment(index: int, cue: Cue) -> dict[str, Any]:
    text = join_lines([line.strip() for line in cue.lines if line.strip()])
    probabilities = [max(word.probability, _MIN_PROBABILITY) for word in cue.words]
    avg_logprob = sum(map(math.log, probabilities)) / len(probabilities) if probabilities else 0.0
    encoded = text.encode("utf-8")
    return {
        "id": index,
        "seek": round(cue.start * 100),  # Whisper's seek counts 10 ms frames
        "start": _time(cue.start),
        "end": _time(cue.end),
        "text": text,
        "tokens": [],
        "temperature": 0.0,
        "avg_logprob": round(avg_logprob, 4),
        "compression_ratio": round(len(encoded) / len(zlib.compress(encoded)), 4) if encoded else 0.0,
        "no_speech_prob": 0.0,
    }


def _time(seconds: float) -> float:
    return round(max(0.0, seconds), 3)
