"""What a job produces from which audio, and per-request options."""

from __future__ import annotations

from transcriptarr.db.models import Job, Task
from transcriptarr.policy.plans import Plan, plan_task
from transcriptarr.workers.job_runner import _preset_for


def test_same_language_or_original_is_transcribed() -> None:
    assert plan_task("de", None) == Plan(Task.TRANSCRIBE, "de", "de")
    assert plan_task("de", "de") == Plan(Task.TRANSCRIBE, "de", "de")


def test_english_from_other_audio_is_translated() -> None:
    assert plan_task("ja", "en") == Plan(Task.TRANSLATE, "ja", "en")


def test_other_combinations_are_skipped_with_a_reason() -> None:
    reason = plan_task("en", "fr")
    assert isinstance(reason, str) and "cannot make fr subtitles from en audio" in reason


def test_a_clients_vad_filter_false_turns_vad_off_for_that_job_only() -> None:
    plain = Job(quality="balanced", options={})
    no_vad = Job(quality="balanced", options={"vad_filter": False})
    assert _preset_for(plain).vad_filter is True
    assert _preset_for(no_vad).vad_filter is False
    assert _preset_for(Job(quality="fast", options={"vad_filter": True})).batched
