"""Render cues as subtitle or transcript files: one renderer per format of policy/output_formats.py.

srt, vtt and ass go through pysubs2; txt, tsv, json and lrc are simple enough
to write directly. Every renderer accepts an empty cue list and returns a valid
(possibly empty) document; the caller decides whether to write it. A format in
the table without a renderer here (or the reverse) stops the import.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from types import MappingProxyType
from typing import Any, Final

import pysubs2

from transcriptarr.policy.output_formats import ALL_FORMATS
from transcriptarr.subtitles.cues import Cue, join_lines

__all__ = ["SUPPORTED_FORMATS", "render"]

SUPPORTED_FORMATS: Final = ALL_FORMATS

# A renderer takes the cues that have text and the language (for json).
Renderer = Callable[[Sequence[Cue], str | None], str]


def render(cues: Sequence[Cue], fmt: str, *, language: str | None = None) -> str:
    """Render cues in one of SUPPORTED_FORMATS (case-insensitive, a leading dot is ignored)."""
    shown = [cue for cue in cues if _lines(cue)]  # a cue with no text cannot be displayed
    renderer = _RENDERERS.get(fmt.lower().lstrip("."))
    if renderer is None:
        raise ValueError(f"unsupported subtitle format {fmt!r}; supported: {', '.join(SUPPORTED_FORMATS)}")
    return renderer(shown, language)


def _lines(cue: Cue) -> list[str]:
    """Non-blank lines, single-spaced: a blank line would end an SRT/VTT block early."""
    return [" ".join(line.split()) for line in cue.lines if line.strip()]


def _flat(cue: Cue) -> str:
    return join_lines(_lines(cue))


def _ms(seconds: float) -> int:
    return max(0, round(seconds * 1000))


# --------------------------------------------------------------------------- pysubs2 formats


def _srt_line(line: str) -> str:
    # "-->" inside text can be taken for a timing line by lenient parsers.
    return line.replace("-->", "->")


def _vtt_line(line: str) -> str:
    # WebVTT cue text is HTML-like: escape the three characters with meaning (this also defuses "-->").
    return line.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _ass_line(line: str) -> str:
    # Braces open override blocks and backslashes start tags in ASS; ASS has no escape that
    # every renderer understands, so use look-alikes.
    return line.replace("{", "(").replace("}", ")").replace("\\", "\u29f5")


def _pysubs(cues: Sequence[Cue], fmt: str, escape: Callable[[str], str]) -> str:
    subs = pysubs2.SSAFile()
    if fmt == "ass":
        _style_for_1080p(subs)
    for cue in cues:
        text = r"\N".join(escape(line) for line in _lines(cue))
        subs.append(pysubs2.SSAEvent(start=_ms(cue.start), end=_ms(cue.end), text=text))
    # keep_ssa_tags: our text is plain; never let pysubs2 reinterpret braces as tags.
    options: dict[str, Any] = {"keep_ssa_tags": True} if fmt in {"srt", "vtt"} else {}
    return str(subs.to_string(fmt, **options))


def _style_for_1080p(subs: Any) -> None:
    """Script resolution 1080p with a font size that fits 42 characters per line."""
    subs.info["PlayResX"] = "1920"
    subs.info["PlayResY"] = "1080"
    style = subs.styles["Default"]
    style.fontsize = 64
    style.outline = 3
    style.shadow = 1
    style.marginl = style.marginr = 96
    style.marginv = 54


# --------------------------------------------------------------------------- text formats


def _tsv(cues: Sequence[Cue]) -> str:
    """whisper-asr-webservice style: integer milliseconds, a header line, tabs never in text."""
    rows = [f"{_ms(c.start)}\t{_ms(c.end)}\t{_flat(c).replace(chr(9), ' ')}\n" for c in cues]
    return "start\tend\ttext\n" + "".join(rows)


def _json(cues: Sequence[Cue], language: str | None) -> str:
    segments = [
        {
            "start": _seconds(cue.start),
            "end": _seconds(cue.end),
            "text": _flat(cue),
            "words": [
                {
                    "start": _seconds(w.start),
                    "end": _seconds(w.end),
                    "word": w.text,
                    "probability": round(w.probability, 4),
                }
                for w in cue.words
            ],
        }
        for cue in cues
    ]
    document = {"text": join_lines([_flat(c) for c in cues]), "language": language, "segments": segments}
    return json.dumps(document, ensure_ascii=False, indent=2) + "\n"


def _seconds(value: float) -> float:
    return _ms(value) / 1000


def _lrc_time(seconds: float) -> str:
    centis = max(0, round(seconds * 100))
    minutes, centis = divmod(centis, 6000)
    return f"[{minutes:02d}:{centis // 100:02d}.{centis % 100:02d}]"


# --------------------------------------------------------------------------- one renderer per format

_RENDERERS: Final[MappingProxyType[str, Renderer]] = MappingProxyType(
    {
        "srt": lambda cues, _: _pysubs(cues, "srt", _srt_line),
        "vtt": lambda cues, _: _pysubs(cues, "vtt", _vtt_line),
        "ass": lambda cues, _: _pysubs(cues, "ass", _ass_line),
        "txt": lambda cues, _: "".join(f"{_flat(cue)}\n" for cue in cues),
        "tsv": lambda cues, _: _tsv(cues),
        "json": _json,
        "lrc": lambda cues, _: "".join(f"{_lrc_time(cue.start)}{_flat(cue)}\n" for cue in cues),
    }
)
if set(_RENDERERS) != set(ALL_FORMATS):
    raise ImportError(
        f"subtitles/formats.py renders {sorted(_RENDERERS)} but policy/output_formats.py lists {sorted(ALL_FORMATS)}: "
        "give every format of the table one renderer here"
    )
