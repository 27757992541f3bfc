"""Subtitle file names: one function for the worker and the Bazarr integration, SubGen's five language forms,
SubGen's `.subgen.<model>.` parts, lyrics for audio files."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.acceptance.engine_harness import engine_settings, process, srt_text
from tests.media_factory import fixture_path, make_video
from transcriptarr.db.models import JobState
from transcriptarr.policy.naming import (
    _NATIVE_NAMES,
    LANGUAGE_FORMS,
    SubtitleNaming,
    language_from_label,
    language_label,
    model_label,
    subtitle_path,
)
from transcriptarr.settings import ConfigError, Settings, load_settings

MOVIE = Path("/media/Movies/Heat (1995)/Heat (1995).mkv")


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)
    for name in Settings.model_fields:
        monkeypatch.delenv(name.upper(), raising=False)


@pytest.mark.parametrize(
    ("language", "forms"),
    [
        # SubGen's language_code.py spells them so: ISO_639_1, ISO_639_2_B, ISO_639_2_T, NAME, NATIVE.
        ("en", ("en", "eng", "eng", "English", "English")),
        ("de", ("de", "ger", "deu", "German", "Deutsch")),
        ("fr", ("fr", "fre", "fra", "French", "Français")),
        ("el", ("el", "gre", "ell", "Greek", "Ελληνικά")),
        ("zh", ("zh", "chi", "zho", "Chinese", "中文")),
        ("ja", ("ja", "jpn", "jpn", "Japanese", "日本語")),
        ("sl", ("sl", "slv", "slv", "Slovene", "Slovenščina")),
        ("yue", ("yue", "yue", "yue", "Cantonese", "粵語")),
        ("haw", ("haw", "haw", "haw", "Hawaiian", "ʻŌlelo Hawaiʻi")),
        ("ger", ("de", "ger", "deu", "German", "Deutsch")),  # any code form in
        ("pt-BR", ("pt-BR",) * 5),  # with a region: kept as given
    ],
)
def test_subgens_five_language_forms(language: str, forms: tuple[str, ...]) -> None:
    assert tuple(language_label(language, form) for form in LANGUAGE_FORMS) == forms  # type: ignore[arg-type]


def test_every_label_reads_back_as_its_language() -> None:
    for code in _NATIVE_NAMES:
        language = language_from_label(code)
        assert language is not None, code
        for form in LANGUAGE_FORMS:
            label = language_label(language, form)  # type: ignore[arg-type]
            assert language_from_label(label) == language, (code, form, label)


@pytest.mark.parametrize(
    ("naming", "language", "name"),
    [
        (SubtitleNaming(), "en", "Heat (1995).en.srt"),
        (SubtitleNaming(language_form="alpha3"), "de", "Heat (1995).ger.srt"),
        (SubtitleNaming(fmt="VTT"), "eng", "Heat (1995).en.vtt"),
        (SubtitleNaming(marker="transcriptarr"), "en", "Heat (1995).en.transcriptarr.srt"),
        (SubtitleNaming(language_form="alpha3", tags=("subgen", "medium")), "en", "Heat (1995).subgen.medium.eng.srt"),
        (
            SubtitleNaming(language_form="name", tags=("subgen", "large-v3")),
            "en",
            "Heat (1995).subgen.large-v3.English.srt",
        ),
        (SubtitleNaming(language_form="native", tags=("subgen",)), "de", "Heat (1995).subgen.Deutsch.srt"),
        (SubtitleNaming(language_form="alpha3t", tags=("medium",)), "fr", "Heat (1995).medium.fra.srt"),
    ],
)
def test_file_names(naming: SubtitleNaming, language: str, name: str) -> None:
    assert subtitle_path(MOVIE, language, naming) == MOVIE.with_name(name)


def test_an_audio_file_gets_one_lyrics_file_whatever_the_naming() -> None:
    song = Path("/music/Artist/Song.flac")
    for naming in (SubtitleNaming(), SubtitleNaming(language_form="native", tags=("subgen", "medium"), marker="x")):
        assert subtitle_path(song, "de", naming) == song.with_name("Song.lrc")


@pytest.mark.parametrize(
    ("environ", "lyrics", "subtitle"),
    [
        # LIBRARY_AUDIO_EXTENSIONS adds to the common audio extensions: both get lyrics.
        ({"library_audio_extensions": "mka,.DTS"}, ["Song.mka", "Song.dts", "Song.flac", "Song.MP3"], []),
        # A video extension wins, as in the library rules, which look at the video list first.
        (
            {"library_audio_extensions": "mka,mp4", "library_video_extensions": "mp4,ogg"},
            ["Song.mka", "Song.flac"],
            ["Song.ogg", "Song.mp4"],
        ),
        # AUDIO_LYRICS=false: audio files are named like videos.
        ({"library_audio_extensions": "mka", "audio_lyrics": "false"}, [], ["Song.mka", "Song.flac", "Song.mp3"]),
    ],
)
def test_which_files_get_lyrics_follows_the_settings(
    environ: dict[str, str], lyrics: list[str], subtitle: list[str]
) -> None:
    naming = SubtitleNaming.from_settings(load_settings(**environ))
    folder = Path("/music/Artist")
    for name in lyrics:
        song = folder / name
        assert subtitle_path(song, "de", naming) == folder / "Song.lrc", name
        assert naming.format_for(song) == "lrc"
    for name in subtitle:
        song = folder / name
        assert subtitle_path(song, "de", naming) == folder / "Song.de.srt", name
        assert naming.format_for(song) == "srt"


def test_without_lyrics_an_audio_file_follows_the_subtitle_naming() -> None:
    settings = load_settings(
        audio_lyrics="false", subtitle_format="vtt", subtitle_name_tags="subgen|{model}", whisper_model="medium"
    )
    naming = SubtitleNaming.from_settings(settings)
    song = Path("/music/Artist/Song.mp3")
    assert subtitle_path(song, "en", naming) == song.with_name("Song.subgen.medium.en.vtt")
    assert naming.format_for(song) == "vtt"
    assert naming.lyrics_extensions == frozenset()


def test_the_default_naming_gives_the_common_audio_files_lyrics() -> None:
    """With LIBRARY_AUDIO_EXTENSIONS unset (audio out of the scans), a file queued by hand still gets lyrics."""
    assert SubtitleNaming.from_settings(load_settings()) == SubtitleNaming()
    assert subtitle_path(Path("/in/Book.m4b"), "en", SubtitleNaming()).name == "Book.lrc"


@pytest.mark.parametrize("part", ["", "a/b", "..", " x", "a\\b"])
def test_path_like_name_parts_are_refused(part: str) -> None:
    with pytest.raises(ValueError, match="invalid subtitle file name part"):
        subtitle_path(MOVIE, "en", SubtitleNaming(tags=(part,)))


@pytest.mark.parametrize(
    ("model", "label"),
    [
        ("medium", "medium"),
        ("large-v3", "large-v3"),
        ("bundled:tiny.en", "tiny.en"),
        ("Systran/faster-whisper-small", "faster-whisper-small"),
        ("/models/my-whisper/", "my-whisper"),
    ],
)
def test_model_names_in_file_names(model: str, label: str) -> None:
    assert model_label(model) == label


def test_subgens_naming_from_the_settings() -> None:
    settings = load_settings(
        whisper_model="large-v3", subtitle_name_tags="subgen|{model}", subtitle_language_code="ISO_639_2_B"
    )
    assert settings.subtitle_language_code == "alpha3"
    naming = SubtitleNaming.from_settings(settings)
    assert subtitle_path(MOVIE, "en", naming).name == "Heat (1995).subgen.large-v3.eng.srt"


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("SUBTITLE_NAME_TAGS", "subgen|a/b", "SUBTITLE_NAME_TAGS: invalid subtitle file name part 'a/b'"),
        ("SUBTITLE_LANGUAGE_CODE", "klingon", "SUBTITLE_LANGUAGE_CODE: Input should be 'alpha2', 'alpha3'"),
    ],
)
def test_bad_naming_settings_are_one_line(monkeypatch: pytest.MonkeyPatch, name: str, value: str, message: str) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(ConfigError) as caught:
        load_settings()
    assert str(caught.value).startswith(message) and "\n" not in str(caught.value)


def test_the_worker_and_the_bazarr_sync_name_alike(tmp_path: Path) -> None:
    from transcriptarr.integrations.bazarr_sync import SyncConfig
    from transcriptarr.service import engine_config
    from transcriptarr.workers.job_runner import JobRunner

    settings = load_settings(
        whisper_model="medium",
        subtitle_name_tags="subgen|{model}",
        subtitle_language_code="native",
        bazarr_url="http://bazarr:6767",
        bazarr_api_key="key",
        data_dir=tmp_path / "data",
        library_audio_extensions="mka",
    )
    naming = SubtitleNaming.from_settings(settings)
    assert SyncConfig.from_settings(settings).naming == naming
    runner = JobRunner(engine_config(settings), models=None, subtitles=None)  # type: ignore[arg-type]
    assert runner._target_path(MOVIE, "de") == MOVIE.with_name("Heat (1995).subgen.medium.Deutsch.srt")
    assert runner._target_path(MOVIE, "de") == subtitle_path(MOVIE, "de", naming)
    song = Path("/music/Song.mka")  # an audio extension of LIBRARY_AUDIO_EXTENSIONS only
    assert runner._target_path(song, "de") == subtitle_path(song, "de", naming) == song.with_name("Song.lrc")
    plain = settings.model_copy(update={"audio_lyrics": False})
    runner = JobRunner(engine_config(plain), models=None, subtitles=None)  # type: ignore[arg-type]
    assert SyncConfig.from_settings(plain).naming == SubtitleNaming.from_settings(plain)
    assert runner._target_path(song, "de") == song.with_name("Song.subgen.medium.Deutsch.srt")


@pytest.mark.slow
async def test_the_worker_writes_subgens_file_name(tmp_path: Path) -> None:
    """The real pipeline with the bundled tiny.en model: SubGen's naming is what lands next to the movie."""
    folder = tmp_path / "lib"
    folder.mkdir()
    movie = make_video(folder / "Kennedy (1961).mkv", [(fixture_path("jfk.flac"), "eng", True)])
    settings = engine_settings(
        tmp_path, quality="fast", subtitle_name_tags="subgen|{model}", subtitle_language_code="alpha3"
    )
    [job] = await process(settings, [movie])
    assert job.state == JobState.COMPLETED, job.error
    assert job.result_path == str(folder / "Kennedy (1961).subgen.tiny.en.eng.srt")
    _, words = srt_text(folder / "Kennedy (1961).subgen.tiny.en.eng.srt")
    assert "ask not what your country" in words
