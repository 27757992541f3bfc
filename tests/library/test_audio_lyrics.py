"""AUDIO_LYRICS in the library rules: one .lrc per audio file, or a subtitle per wanted language like a video;
and the rules, the worker's naming and the Bazarr integration agree on which files are audio."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from transcriptarr.db.models import Task
from transcriptarr.library.config import LibraryConfig, RulesConfig
from transcriptarr.library.rules import Decision, decide, screen
from transcriptarr.library.sidecars import Sidecar
from transcriptarr.media.probe import AudioStream, MediaInfo
from transcriptarr.policy.naming import SubtitleNaming
from transcriptarr.settings import Settings, load_settings

SONG = "/lib/Artist/Song.mka"


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)
    for name in Settings.model_fields:
        monkeypatch.delenv(name.upper(), raising=False)


def song_probe(language: str | None) -> MediaInfo:
    audio = AudioStream(0, "flac", 2, language, language, True, None, 0.0)
    return MediaInfo(SONG, 240.0, "matroska", 0.0, (audio,), ())


def decide_song(*sidecars: Sidecar, language: str | None = "de", **rules: Any) -> Decision:
    config = replace(RulesConfig(audio_extensions=frozenset({".mka"}), target_languages=("de", "en")), **rules)
    return decide(SONG, "/lib", config, song_probe(language), sidecars)


def said(decision: Decision, text: str) -> bool:
    return any(text in reason for reason in decision.reasons)


def test_by_default_an_audio_file_gets_one_lyrics_file() -> None:
    decision = decide_song()
    assert decision.jobs == [(None, Task.TRANSCRIBE)]
    assert said(decision, "audio files get one .lrc (AUDIO_LYRICS): only the first wanted language is queued")

    single = decide_song(target_languages=("de",))
    assert single.jobs == [(None, Task.TRANSCRIBE)]
    assert said(single, "audio files get one .lrc (AUDIO_LYRICS): the job writes Song.lrc")

    done = decide_song(Sidecar("/lib/Artist/Song.lrc", None))
    assert not done.queue
    assert said(done, "has lyrics: Song.lrc (audio files get one .lrc: AUDIO_LYRICS)")


def test_without_lyrics_an_audio_file_is_decided_like_a_video() -> None:
    decision = decide_song(audio_lyrics=False)
    assert decision.jobs == [(None, Task.TRANSCRIBE), ("en", Task.TRANSLATE)]
    assert said(decision, "an audio file gets a subtitle per wanted language, as a video does (AUDIO_LYRICS=false)")
    assert not said(decision, ".lrc")
    assert decision.summary == "queue: 2 jobs"

    # Lyrics have no language: they do not cover a wanted one. A German sidecar covers German only.
    covered = decide_song(
        Sidecar("/lib/Artist/Song.lrc", None), Sidecar("/lib/Artist/Song.de.srt", "de"), audio_lyrics=False
    )
    assert covered.jobs == [("en", Task.TRANSLATE)]
    assert said(covered, "de: has German subtitles: Song.de.srt (sidecar)")


def test_a_video_is_not_touched_by_the_setting() -> None:
    config = RulesConfig(target_languages=("de", "en"))
    audio = AudioStream(0, "aac", 2, "de", "de", True, None, 0.0)
    movie = MediaInfo("/lib/Movie.mkv", 5400.0, "matroska", 0.0, (audio,), ())
    for lyrics in (True, False):
        decision = decide("/lib/Movie.mkv", "/lib", replace(config, audio_lyrics=lyrics), movie)
        assert len(decision.jobs) == 2 and not said(decision, "AUDIO_LYRICS")


def test_the_setting_reaches_the_rules_and_a_change_decides_every_file_again() -> None:
    on = LibraryConfig.from_settings(load_settings()).rules
    off = LibraryConfig.from_settings(load_settings(audio_lyrics="false")).rules
    assert on.audio_lyrics and not off.audio_lyrics
    assert on.fingerprint() != off.fingerprint()


@pytest.mark.parametrize(
    "environ",
    [
        {},
        {"library_audio_extensions": "mp3,m4b,mka"},
        {"library_audio_extensions": "mp3,mka,mp4", "library_video_extensions": "mkv,mp4,ogg"},
        {"library_audio_extensions": "mp3,mka", "audio_lyrics": "false"},
        {"library_audio_extensions": "flac", "library_video_extensions": ""},
    ],
)
def test_the_rules_and_the_naming_agree_on_which_files_get_lyrics(environ: dict[str, str]) -> None:
    """Every file the library looks at: the rules treat it as audio with lyrics exactly when the worker (and
    the Bazarr integration, which uses the same naming) writes <stem>.lrc for it."""
    settings = load_settings(**environ)
    rules = LibraryConfig.from_settings(settings).rules
    naming = SubtitleNaming.from_settings(settings)
    names = ["a.mp3", "a.MKA", "a.mp4", "a.ogg", "a.flac", "a.m4b", "a.mkv", "a.wav", "a.dts"]
    looked_at = 0
    for name in names:
        screening = screen(f"/lib/{name}", "/lib", rules)
        if not screening.passed:
            continue  # not a media file here: only a file queued by hand reaches the worker
        looked_at += 1
        lyrics_by_rules = screening.kind == "audio" and rules.audio_lyrics
        assert naming.gets_lyrics(Path(name)) == lyrics_by_rules, (name, environ)
    assert looked_at >= 1
