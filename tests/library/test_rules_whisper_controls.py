"""LIMIT_TO_PREFERRED_AUDIO_LANGUAGES and models that cannot translate, in the rule engine (probe results by hand).

LIMIT_TO_PREFERRED_AUDIO_LANGUAGES means what SubGen's LIMIT_TO_PREFERRED_AUDIO_LANGUAGE means (subgen.py,
should_skip_file): a file is skipped unless one of its audio tracks is tagged with a preferred language;
a track without a tag does not count.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from transcriptarr.db.models import Task
from transcriptarr.library.config import LibraryConfig, RulesConfig
from transcriptarr.library.rules import Decision, decide
from transcriptarr.media.probe import AudioStream, MediaInfo
from transcriptarr.settings import ConfigError, load_settings

LIMIT = "LIMIT_TO_PREFERRED_AUDIO_LANGUAGES"


def track(index: int, tag: str | None, language: str | None, *, default: bool = False) -> AudioStream:
    return AudioStream(index, "aac", 2, language, tag, default, None, 0.0)


def decide_tracks(*tracks: AudioStream, **rules: Any) -> Decision:
    config = replace(RulesConfig(target_languages=("original",)), **rules)
    info = MediaInfo("/lib/Film.mkv", 5400.0, "matroska", 0.0, tracks, ())
    return decide("/lib/Film.mkv", "/lib", config, info)


def limited(*tracks: AudioStream, preferred: tuple[str, ...] = ("ja", "en")) -> Decision:
    return decide_tracks(*tracks, preferred_audio_languages=preferred, limit_to_preferred_audio_languages=True)


GERMAN = track(1, "ger", "de", default=True)
JAPANESE = track(2, "jpn", "ja")
UNTAGGED = track(3, None, None)


def test_no_track_in_a_preferred_language_is_skipped_and_explain_lists_the_tracks() -> None:
    decision = limited(GERMAN, UNTAGGED)
    assert not decision.queue and decision.jobs == []
    assert decision.summary == (
        "skipped: no audio track in a preferred language (Japanese, English); "
        f"tracks: #1 German, #3 without a language tag ({LIMIT})"
    )


def test_one_preferred_track_among_others_is_enough_and_is_the_one_transcribed() -> None:
    decision = limited(GERMAN, JAPANESE)
    assert decision.queue and decision.jobs == [(None, Task.TRANSCRIBE)]
    assert decision.source_language == "ja"
    assert f"audio track #2 is in a preferred language, Japanese ({LIMIT})" in decision.reasons


def test_preferred_languages_match_in_any_spelling() -> None:
    assert limited(track(1, "eng", "en"), preferred=("eng",)).queue
    assert limited(track(1, "eng", "en"), preferred=("English",)).queue
    assert not limited(track(1, "fre", "fr"), preferred=("eng",)).queue


def test_an_untagged_track_does_not_count_even_with_force_language() -> None:
    # As in SubGen: the limit looks at the tracks' tags; FORCE_LANGUAGE only says what the audio is.
    decision = decide_tracks(
        UNTAGGED, preferred_audio_languages=("en",), limit_to_preferred_audio_languages=True, force_language="en"
    )
    assert not decision.queue and decision.summary.endswith(f"#3 without a language tag ({LIMIT})")


def test_without_the_limit_preferred_languages_only_choose_the_track() -> None:
    decision = decide_tracks(GERMAN, preferred_audio_languages=("ja",))
    assert decision.queue and decision.source_language == "de"
    assert not any(LIMIT in reason for reason in decision.reasons)


def test_the_limit_changes_the_fingerprint_so_a_rescan_decides_again() -> None:
    assert RulesConfig().fingerprint() != RulesConfig(limit_to_preferred_audio_languages=True).fingerprint()


def test_the_setting_reaches_the_rules_and_needs_preferred_languages(monkeypatch: pytest.MonkeyPatch) -> None:
    settings = load_settings(limit_to_preferred_audio_languages=True, preferred_audio_languages="ja,en")
    rules = LibraryConfig.from_settings(settings).rules
    assert rules.limit_to_preferred_audio_languages and rules.preferred_audio_languages == ("ja", "en")
    monkeypatch.setenv(LIMIT, "true")
    with pytest.raises(ConfigError) as caught:
        load_settings()
    assert str(caught.value) == (
        f"{LIMIT}: needs PREFERRED_AUDIO_LANGUAGES, the languages to keep, e.g. PREFERRED_AUDIO_LANGUAGES=en,ja "
        "(SubGen's default was eng)"
    )


# --------------------------------------------------------------------------- models that cannot translate


def test_explain_says_why_no_english_job_is_queued_with_a_model_that_cannot_translate() -> None:
    decision = decide_tracks(GERMAN, target_languages=("original", "en"), whisper_model="large-v3-turbo")
    assert decision.jobs == [(None, Task.TRANSCRIBE)]
    assert (
        "en: no English subtitles, but cannot translate de audio into English: the model 'large-v3-turbo' is a "
        "turbo model, trained without translation data, and cannot translate; set WHISPER_MODEL to a multilingual "
        "model such as small, medium or large-v3"
    ) in decision.reasons


def test_a_model_that_can_translate_gets_the_english_job() -> None:
    decision = decide_tracks(GERMAN, target_languages=("en",), whisper_model="large-v3")
    assert decision.jobs == [("en", Task.TRANSLATE)]


def test_english_audio_needs_no_translation_whatever_the_model() -> None:
    decision = decide_tracks(track(1, "eng", "en"), target_languages=("en",), whisper_model="bundled:tiny.en")
    assert decision.jobs == [(None, Task.TRANSCRIBE)]


def test_unknown_audio_language_says_what_the_model_can_make() -> None:
    decision = decide_tracks(UNTAGGED, target_languages=("en",), whisper_model="distil-large-v3")
    assert decision.jobs == [("en", Task.TRANSCRIBE)]  # the audio may be English: the worker finds out
    assert any("it can make English subtitles from English audio only: the model" in r for r in decision.reasons)


def test_the_model_reaches_the_rules_from_the_settings() -> None:
    rules = LibraryConfig.from_settings(load_settings(whisper_model="turbo")).rules
    assert rules.whisper_model == "turbo"
