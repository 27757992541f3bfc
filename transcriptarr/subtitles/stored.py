"""Cues kept in the database (Bazarr results), so any output format can be rendered later."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from transcriptarr.subtitles.cues import Cue, Word

VERSION = 1


def dump_cues(cues: Sequence[Cue], language: str | None) -> str:
    document = {
        "version": VERSION,
        "language": language,
        "cues": [
            {
                "start": cue.start,
                "end": cue.end,
                "lines": list(cue.lines),
                "words": [[w.start, w.end, w.text, round(w.probability, 4)] for w in cue.words],
            }
            for cue in cues
        ],
    }
    return json.dumps(document, ensure_ascii=False, separators=(",", ":"))


def load_cues(text: str) -> tuple[str | None, list[Cue]]:
    """Inverse of dump_cues; ValueError when the stored text is not ours."""
    try:
        document: dict[str, Any] = json.loads(text)
        cues = [
            Cue(
                start=float(item["start"]),
                end=float(item["end"]),
                lines=tuple(str(line) for line in item["lines"]),
                words=tuple(Word(float(s), float(e), str(t), float(p)) for s, e, t, p in item["words"]),
            )
            for item in document["cues"]
        ]
    except (ValueError, KeyError, TypeError) as exc:
        raise ValueError(f"stored result is not a cue document: {exc}") from exc
    language = document.get("language")
    return (str(language) if language else None), cues
