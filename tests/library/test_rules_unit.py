"""Rule details that need no files: probe results made by hand."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from transcriptarr.library.config import RulesConfig
from transcriptarr.library.rules import Decision, decide, matching_glob, screen
from transcriptarr.media.probe import AudioStream, MediaInfo, ProbeError, SubtitleStream


def media(*, subtitles: tuple[SubtitleStream, ...] = (), language: str | None = "en") -> MediaInfo:
    audio = AudioStream(1, "aac", 2, language, language, True, None, 0.0)
    return MediaInfo("/lib/Movie.mkv", 5400.0, "matroska", 0.0, (audio,), subtitles)


def decide_with(*, subtitles: tuple[SubtitleStream, ...] = (), **rules: Any) -> Decision:
    config = replace(RulesConfig(target_languages=("en",)), **rules)
    return decide("/lib/Movie.mkv", "/lib", config, media(subtitles=subtitles))


def test_a_transient_probe_failure_is_tried_again() -> None:
    failure = ProbeError("/lib/Movie.mkv", "ffprobe did not finish within 60 s", kind="timeout", permanent=False)
    decision = decide("/lib/Movie.mkv", "/lib", RulesConfig(), failure)
    assert not decision.queue and decision.retry
    assert decision.summary == "not decided yet: ffprobe did not finish within 60 s; tried again next scan"


def test_every_outcome_ends_with_its_reason() -> None:
    decision = decide_with()
    assert decision.jobs and decision.summary == "queue: 1 job"
    text = SubtitleStream(3, "subrip", "en", "eng", False, True, True, None)
    assert decide_with(subtitles=(text,)).summary.startswith("nothing to do")


def test_ignore_patterns_match_case_insensitively_and_name_the_pattern() -> None:
    globs = ("*/extras/*", "*-trailer.*")
    assert matching_glob("/movie/EXTRAS/a.mkv", globs) == "*/extras/*"
    assert matching_glob("/movie/Movie-Trailer.mkv", globs) == "*-trailer.*"
    assert matching_glob("/movie/Movie.mkv", globs) is None


def test_rule_settings_change_the_fingerprint() -> None:
    assert RulesConfig().fingerprint() == RulesConfig().fingerprint()
    assert RulesConfig().fingerprint() != RulesConfig(target_languages=("en",)).fingerprint()
    assert RulesConfig().fingerprint() != RulesConfig(count_forced_subtitles=True).fingerprint()


def test_screening_needs_no_file() -> None:
    assert screen("/lib/a/Movie.mkv", "/lib", RulesConfig()).passed
    assert not screen("/lib/a/Movie.srt", "/lib", RulesConfig()).passed


def test_embedded_image_subtitles_follow_the_setting() -> None:
    # ffmpeg cannot make bitmap subtitle streams from text, so this one uses a probe result.
    pgs = SubtitleStream(2, "hdmv_pgs_subtitle", "en", "eng", False, False, False, None)
    assert not decide_with(subtitles=(pgs,)).queue
    assert decide_with(subtitles=(pgs,), count_image_subtitles=False).queue
