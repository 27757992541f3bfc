"""What Whisper is asked to make from audio in one language for a wanted subtitle language.

Whisper transcribes (the subtitle is in the spoken language) or translates into English, and not every
model translates (policy/capabilities.py). One rule for the library rules (what to queue), the Bazarr
sync (what it may promise) and the worker (what it runs): kept here, away from faster-whisper, so that
the first two decide without loading the engine.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from transcriptarr.policy.capabilities import translation_refusal

__all__ = ["Plan", "Task", "plan_task"]


class Task(StrEnum):
    """What Whisper does with the audio; stored in the jobs table (transcriptarr/db/models.py)."""

    TRANSCRIBE = "transcribe"
    TRANSLATE = "translate"


@dataclass(frozen=True)
class Plan:
    """What to produce from which audio language."""

    task: Task
    source_language: str
    target_language: str


def plan_task(source: str, target: str | None, model: str | None = None) -> Plan | str:
    """Whisper can transcribe, or translate into English (not every `model`); anything else is a reason to skip."""
    if target is None or target == source:
        return Plan(Task.TRANSCRIBE, source, source)
    if target == "en":
        if model and (refusal := translation_refusal(model)):
            return f"cannot translate {source} audio into English: {refusal}"
        return Plan(Task.TRANSLATE, source, "en")
    return f"cannot make {target} subtitles from {source} audio: Whisper only transcribes, or translates into English"
