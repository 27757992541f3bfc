"""SubGen's settings understood: a SubGen user's env file gives the Settings it means, from the environment
and from a .env file; Transcriptarr's own names win; a bad SubGen value is one line naming it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from structlog.testing import capture_logs

from transcriptarr.policy.naming import SubtitleNaming, subtitle_path
from transcriptarr.settings import ConfigError, Mode, Settings, load_settings
from transcriptarr.subgen_compat import RULES, SHARED_NAMES, log_subgen_settings, read_subgen

SUBGEN_ENV = Path(__file__).resolve().parents[1] / "data" / "subgen.env"

# Every variable SubGen v2026.07.2 reads (subgen.py's os.getenv and get_env_with_fallback, launcher.py's
# UPDATE and LAUNCHER_UPDATE, and the two its Unraid template and compose file still set), legacy names
# included. Not launcher.py's BRANCH: a name too common to take for SubGen's (and "main" changes nothing).
SUBGEN_VARIABLES = """
APPEND ASR_TIMEOUT CLEAR_VRAM_ON_COMPLETE COMPUTE_TYPE CONCURRENT_TRANSCRIPTIONS CUSTOM_MODEL_PROMPT CUSTOM_REGROUP
DEBUG DETECT_LANGUAGE_LENGTH DETECT_LANGUAGE_OFFSET FORCE_DETECTED_LANGUAGE_TO IGNORE_FORCED_SUBTITLES
JELLYFIN_SERVER JELLYFINSERVER JELLYFIN_TOKEN JELLYFINTOKEN LAUNCHER_UPDATE LIMIT_TO_PREFERRED_AUDIO_LANGUAGE
LRC_FOR_AUDIO_FILES
MODEL_CLEANUP_DELAY MODEL_PATH MONITOR PATH_MAPPING_FROM PATH_MAPPING_TO PLEX_QUEUE_NEXT_EPISODE PLEX_QUEUE_SEASON
PLEX_QUEUE_SERIES PLEX_SERVER PLEXSERVER PLEX_TOKEN PLEXTOKEN PREFERRED_AUDIO_LANGUAGES PROCESS_ADDED_MEDIA
PROCADDEDMEDIA PROCESS_MEDIA_ON_PLAY PROCMEDIAONPLAY RELOAD_SCRIPT_ON_CHANGE SHOULD_WHISPER_DETECT_AUDIO_LANGUAGE
SHOW_IN_SUBNAME_MODEL SHOW_IN_SUBNAME_SUBGEN SKIP_IF_AUDIO_LANGUAGES SKIP_IF_AUDIO_TRACK_IS
SKIP_IF_EXTERNAL_SUBTITLES_EXIST SKIPIFEXTERNALSUB SKIP_IF_INTERNAL_SUBTITLES_LANGUAGE SKIPIFINTERNALSUBLANG
SKIP_IF_NO_LANGUAGE_BUT_SUBTITLES_EXIST SKIP_IF_LANGUAGE_IS_NOT_SET_BUT_SUBTITLES_EXIST SKIP_IF_TARGET_SUBTITLES_EXIST
SKIP_IF_TO_TRANSCRIBE_SUB_ALREADY_EXIST SKIP_ONLY_SUBGEN_SUBTITLES ONLY_SKIP_IF_SUBGEN_SUBTITLE SKIP_STARTUP_SCAN
SKIP_SUBTITLE_LANGUAGES SKIP_LANG_CODES SKIP_UNKNOWN_LANGUAGE SUBGEN_KWARGS SUBTITLE_LANGUAGE_NAME NAMESUBLANG
SUBTITLE_LANGUAGE_NAMING_TYPE TRANSCRIBE_DEVICE TRANSCRIBE_FOLDERS TRANSCRIBE_OR_TRANSLATE UPDATE USE_MODEL_PROMPT
USE_PATH_MAPPING WEBHOOK_PORT WEBHOOKPORT WEBHOOK_URL_COMPLETED WHISPER_MODEL WHISPER_THREADS WORD_LEVEL_HIGHLIGHT
""".split()  # noqa: SIM905 - read as one block, like the list it was taken from

TABLE_NAMES = {name for rule in RULES for var in rule.reads for name in (var.name, var.old) if name}


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Tests see only the variables they set: none of ours or SubGen's from outside, no .env of the checkout."""
    monkeypatch.chdir(tmp_path)
    for name in {field.upper() for field in Settings.model_fields} | set(SUBGEN_VARIABLES):
        monkeypatch.delenv(name, raising=False)


def subgen_env(folders: list[Path]) -> dict[str, str]:
    """tests/data/subgen.env as docker compose's env_file reads it, with folders that exist here."""
    values = {}
    for line in SUBGEN_ENV.read_text(encoding="utf-8").splitlines():
        if line.strip() and not line.startswith("#"):
            key, _, value = line.partition("=")
            values[key] = value
    for folder in folders:
        folder.mkdir(exist_ok=True)
    values["TRANSCRIBE_FOLDERS"] = "|".join(str(folder) for folder in folders)
    return values


def expected(folders: list[Path]) -> dict[str, Any]:
    return {
        "library_paths": folders,
        "library_watch": True,
        "library_scan_on_startup": False,
        "http_port": 9000,
        "whisper_device": "cuda",
        "workers": 2,
        "whisper_model": "medium",
        "whisper_threads": 4,
        "whisper_compute_type": "int8_float16",
        "model_dir": Path("/subgen/models"),
        "model_idle_unload_seconds": 45,
        "webhook_events": ["added"],
        "plex_url": "http://plexserver:32400",
        "jellyfin_url": "http://jellyfin:8096",
        "jellyfin_api_key": None,  # SubGen's placeholder "token here"
        "log_level": "debug",
        "path_mappings": ["/tv:/Volumes/TV"],
        "target_languages": ["en"],
        "language_detect_window_seconds": 20,
        "language_detect_offset_seconds": 90,
        "preferred_audio_languages": ["eng", "jpn"],
        "limit_to_preferred_audio_languages": True,
        "skip_audio_languages": ["ko", "de"],
        "skip_unknown_audio_language": True,
        "force_language": None,  # FORCE_DETECTED_LANGUAGE_TO= (empty) is unset
        "subtitle_language_code": "alpha3",
        "subtitle_name_tags": ["subgen", "{model}"],
        "whisper_extra_args": {"vad_filter": True, "beam_size": 5},
        "notify_url": "http://home-assistant:8123/api/webhook/subgen",
        "library_count_forced_subtitles": False,
        "audio_lyrics": True,
        "transcriptarr_mode": frozenset({Mode.STANDALONE, Mode.PROVIDER}),
    }


def assert_subgen_user(settings: Settings, folders: list[Path]) -> None:
    for name, value in expected(folders).items():
        assert getattr(settings, name) == value, name
    assert settings.plex_token is not None and settings.plex_token.get_secret_value() == "plex-token-123"
    naming = SubtitleNaming.from_settings(settings)
    assert subtitle_path(Path("/tv/Show/Show - S01E01.mkv"), "en", naming).name == "Show - S01E01.subgen.medium.eng.srt"
    unsupported = {name for use in settings.subgen.uses if use.kind == "unsupported" for name in use.subgen}
    assert unsupported == {"NAMESUBLANG", "SKIPIFINTERNALSUBLANG", "CUSTOM_REGROUP"}


def test_a_subgen_env_file_in_the_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    folders = [tmp_path / "tv", tmp_path / "movies"]
    for name, value in subgen_env(folders).items():
        monkeypatch.setenv(name, value)
    assert_subgen_user(load_settings(), folders)


def test_the_same_file_as_dotenv(tmp_path: Path) -> None:
    folders = [tmp_path / "tv", tmp_path / "movies"]
    text = "\n".join(f"{name}={value}" for name, value in subgen_env(folders).items())
    (tmp_path / ".env").write_text(text + "\n", encoding="utf-8")
    assert_subgen_user(load_settings(), folders)


def test_a_dotenv_file_named_by_path(tmp_path: Path) -> None:
    folders = [tmp_path / "tv", tmp_path / "movies"]
    elsewhere = tmp_path / "config" / "subgen.env"
    elsewhere.parent.mkdir()
    elsewhere.write_text("\n".join(f"{k}={v}" for k, v in subgen_env(folders).items()), encoding="utf-8")
    assert_subgen_user(load_settings(_env_file=elsewhere), folders)


def test_our_own_name_wins_wherever_each_is_set(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    ours, theirs = tmp_path / "ours", tmp_path / "theirs"
    ours.mkdir()
    theirs.mkdir()
    (tmp_path / ".env").write_text(f"WEBHOOK_PORT=9100\nLIBRARY_PATHS={ours}\n", encoding="utf-8")
    monkeypatch.setenv("HTTP_PORT", "9200")
    monkeypatch.setenv("TRANSCRIBE_FOLDERS", str(theirs))
    monkeypatch.setenv("TRANSCRIBE_DEVICE", "gpu")
    settings = load_settings()
    assert settings.http_port == 9200  # ours in the environment beats SubGen's in .env
    assert settings.library_paths == [ours]  # ours in .env beats SubGen's in the environment
    assert settings.whisper_device == "cuda"
    kinds = {use.subgen: use.kind for use in settings.subgen.uses}
    assert kinds[("WEBHOOK_PORT",)] == kinds[("TRANSCRIBE_FOLDERS",)] == "overridden"
    assert load_settings(http_port=9300).http_port == 9300  # and a value given in code beats both


def test_subgens_current_name_wins_over_its_legacy_name(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WEBHOOKPORT", "9100")
    monkeypatch.setenv("WEBHOOK_PORT", "9200")
    monkeypatch.setenv("PLEXTOKEN", "old")
    monkeypatch.setenv("PLEX_TOKEN", "new")  # also our own name
    settings = load_settings()
    assert settings.http_port == 9200
    assert settings.plex_token is not None and settings.plex_token.get_secret_value() == "new"


@pytest.mark.parametrize(
    ("environ", "settings"),
    [
        ({"MONITOR": "True"}, {"library_watch": True}),
        ({"MONITOR": "false"}, {"library_watch": False}),
        ({"MONITOR": "1"}, {"library_watch": True}),
        ({"MONITOR": "yes"}, {"library_watch": True}),
        ({"MONITOR": "Y"}, {"library_watch": True}),
        ({"MONITOR": "off"}, {"library_watch": False}),
        ({"SKIP_STARTUP_SCAN": "True"}, {"library_scan_on_startup": False}),
        ({"SKIP_STARTUP_SCAN": "0"}, {"library_scan_on_startup": True}),
        ({"TRANSCRIBE_DEVICE": "GPU"}, {"whisper_device": "cuda"}),
        ({"TRANSCRIBE_DEVICE": "cpu"}, {"whisper_device": "cpu"}),
        ({"TRANSCRIBE_OR_TRANSLATE": "transcribe"}, {"target_languages": ["original"]}),
        ({"TRANSCRIBE_OR_TRANSLATE": "Translate"}, {"target_languages": ["en"]}),
        ({"PROCESS_ADDED_MEDIA": "False"}, {"webhook_events": ["played"]}),
        ({"PROCADDEDMEDIA": "False", "PROCMEDIAONPLAY": "False"}, {"webhook_events": []}),
        ({"DEBUG": "False"}, {"log_level": "info"}),
        ({"CLEAR_VRAM_ON_COMPLETE": "False", "MODEL_CLEANUP_DELAY": "10"}, {"model_idle_unload_seconds": 0}),
        ({"MODEL_CLEANUP_DELAY": "0"}, {"model_idle_unload_seconds": 1}),
        ({"USE_PATH_MAPPING": "true"}, {"path_mappings": ["/tv:/Volumes/TV"]}),  # SubGen's defaults
        ({"PATH_MAPPING_FROM": "/tv", "PATH_MAPPING_TO": "/media/tv"}, {"path_mappings": []}),  # not in use
        ({"FORCE_DETECTED_LANGUAGE_TO": "German"}, {"force_language": "de"}),
        ({"FORCE_DETECTED_LANGUAGE_TO": "ja"}, {"force_language": "ja"}),
        ({"SKIP_IF_AUDIO_TRACK_IS": "jpn|Korean"}, {"skip_audio_languages": ["ja", "ko"]}),
        ({"PREFERRED_AUDIO_LANGUAGES": "jpn|eng"}, {"preferred_audio_languages": ["jpn", "eng"]}),
        (
            {"LIMIT_TO_PREFERRED_AUDIO_LANGUAGE": "True"},  # SubGen's PREFERRED_AUDIO_LANGUAGES defaults to eng
            {"limit_to_preferred_audio_languages": True, "preferred_audio_languages": ["eng"]},
        ),
        ({"IGNORE_FORCED_SUBTITLES": "False"}, {"library_count_forced_subtitles": True}),
        ({"SUBTITLE_LANGUAGE_NAMING_TYPE": "NATIVE"}, {"subtitle_language_code": "native"}),
        (
            {"SHOW_IN_SUBNAME_SUBGEN": "False", "SHOW_IN_SUBNAME_MODEL": "False"},
            {"subtitle_name_tags": [], "subtitle_language_code": "alpha3"},
        ),
        (
            {"SUBGEN_KWARGS": "{'beam_size': 3, 'temperature': 0.0}"},
            {"whisper_extra_args": {"beam_size": 3, "temperature": 0.0}},
        ),
        ({"JELLYFIN_TOKEN": "abc", "JELLYFIN_SERVER": "http://jf:8096/"}, {"jellyfin_url": "http://jf:8096"}),
        ({"WEBHOOK_URL_COMPLETED": "http://hook/done"}, {"notify_url": "http://hook/done"}),
        ({"MONITOR": ""}, {"library_watch": True}),  # empty: unset, our default
        ({"LRC_FOR_AUDIO_FILES": "False"}, {"audio_lyrics": False}),
        ({"PLEX_QUEUE_NEXT_EPISODE": "True"}, {"plex_queue_ahead": "next-episode"}),
        ({"PLEX_QUEUE_NEXT_EPISODE": "True", "PLEX_QUEUE_SEASON": "true"}, {"plex_queue_ahead": "season"}),
        ({"PLEX_QUEUE_SEASON": "True", "PLEX_QUEUE_SERIES": "1"}, {"plex_queue_ahead": "series"}),
        ({"PLEX_QUEUE_SERIES": "False", "PLEX_QUEUE_SEASON": "false"}, {"plex_queue_ahead": "off"}),
        ({"LRC_FOR_AUDIO_FILES": "true"}, {"audio_lyrics": True}),
        ({"LRC_FOR_AUDIO_FILES": ""}, {"audio_lyrics": True}),
        (
            {"LRC_FOR_AUDIO_FILES": "True", "APPEND": "False"},
            {"transcriptarr_mode": frozenset({Mode.STANDALONE, Mode.PROVIDER})},
        ),
    ],
)
def test_subgens_value_formats(
    monkeypatch: pytest.MonkeyPatch, environ: dict[str, str], settings: dict[str, Any]
) -> None:
    for name, value in environ.items():
        monkeypatch.setenv(name, value)
    loaded = load_settings()
    for name, value in settings.items():
        assert getattr(loaded, name) == value, name


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("WEBHOOKPORT", "abc", "WEBHOOKPORT (SubGen's name for HTTP_PORT): Input should be a valid integer"),
        ("WEBHOOK_PORT", "70000", "WEBHOOK_PORT (SubGen's name for HTTP_PORT): Input should be less than"),
        (
            "TRANSCRIBE_FOLDERS",
            "/no/such/folder",
            "TRANSCRIBE_FOLDERS (SubGen's name for LIBRARY_PATHS): folder '/no/such/folder' does not exist",
        ),
        ("TRANSCRIBE_DEVICE", "tpu", "TRANSCRIBE_DEVICE (SubGen's name for WHISPER_DEVICE): unknown device 'tpu'"),
        ("MONITOR", "ture", "MONITOR (SubGen's name for LIBRARY_WATCH): 'ture' is not a yes/no value"),
        ("LRC_FOR_AUDIO_FILES", "srt", "LRC_FOR_AUDIO_FILES (SubGen's name for AUDIO_LYRICS): 'srt' is not a yes/no"),
        ("APPEND", "maybe", "APPEND (a SubGen setting): 'maybe' is not a yes/no value"),
        ("PLEX_QUEUE_SEASON", "maybe", "PLEX_QUEUE_SEASON (SubGen's name for PLEX_QUEUE_AHEAD): 'maybe' is not"),
        ("TRANSCRIBE_OR_TRANSLATE", "both", "TRANSCRIBE_OR_TRANSLATE (SubGen's name for TARGET_LANGUAGES): 'both'"),
        ("FORCE_DETECTED_LANGUAGE_TO", "xx", "FORCE_DETECTED_LANGUAGE_TO (SubGen's name for FORCE_LANGUAGE): 'xx'"),
        ("SKIP_IF_AUDIO_LANGUAGES", "eng|nope", "SKIP_IF_AUDIO_LANGUAGES (SubGen's name for SKIP_AUDIO_LANGUAGES)"),
        ("SUBGEN_KWARGS", "{'beam_size': 5", "SUBGEN_KWARGS (SubGen's name for WHISPER_EXTRA_ARGS): "),
        ("SUBGEN_KWARGS", "[1, 2]", "SUBGEN_KWARGS (SubGen's name for WHISPER_EXTRA_ARGS): '[1, 2]' is not a dict"),
        (
            "SUBGEN_KWARGS",
            "{'no_such_arg': 1}",
            "SUBGEN_KWARGS (SubGen's name for WHISPER_EXTRA_ARGS): unknown argument",
        ),
        ("DETECT_LANGUAGE_LENGTH", "900", "DETECT_LANGUAGE_LENGTH (SubGen's name for LANGUAGE_DETECT_WINDOW_SECONDS)"),
        ("MODEL_CLEANUP_DELAY", "soon", "MODEL_CLEANUP_DELAY (SubGen's name for MODEL_IDLE_UNLOAD_SECONDS): 'soon'"),
        ("SUBTITLE_LANGUAGE_NAMING_TYPE", "ISO", "SUBTITLE_LANGUAGE_NAMING_TYPE (SubGen's name for SUBTITLE_LANG"),
        ("WEBHOOK_URL_COMPLETED", "hook", "WEBHOOK_URL_COMPLETED (SubGen's name for NOTIFY_URL): 'hook' is not"),
    ],
)
def test_a_bad_subgen_value_is_one_line_naming_it(
    monkeypatch: pytest.MonkeyPatch, name: str, value: str, message: str
) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(ConfigError) as caught:
        load_settings()
    assert str(caught.value).startswith(message), str(caught.value)
    assert "\n" not in str(caught.value)


@pytest.mark.parametrize(("value", "subtitle"), [("True", "Song.lrc"), ("False", "Song.subgen.medium.eng.srt")])
def test_lrc_for_audio_files_decides_what_an_audio_file_gets(
    monkeypatch: pytest.MonkeyPatch, value: str, subtitle: str
) -> None:
    """As in SubGen: lyrics, or the subtitle SubGen's naming gives a video."""
    for name, setting in {"LRC_FOR_AUDIO_FILES": value, "SHOW_IN_SUBNAME_SUBGEN": "True"}.items():
        monkeypatch.setenv(name, setting)
    settings = load_settings(whisper_model="medium")
    song = Path("/music/Artist/Song.mp3")
    assert subtitle_path(song, "en", SubtitleNaming.from_settings(settings)) == song.with_name(subtitle)
    used = {name: use for use in settings.subgen.uses for name in use.subgen}
    assert used["LRC_FOR_AUDIO_FILES"].kind != "unsupported"


def test_a_bad_value_under_our_own_name_keeps_our_name(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRANSCRIBE_DEVICE", "gpu")
    monkeypatch.setenv("HTTP_PORT", "abc")
    with pytest.raises(ConfigError, match=r"^HTTP_PORT: Input should be a valid integer"):
        load_settings()


def test_the_table_covers_every_subgen_variable() -> None:
    missing = sorted(set(SUBGEN_VARIABLES) - TABLE_NAMES - set(SHARED_NAMES))
    assert not missing, f"SubGen variables neither in RULES nor in SHARED_NAMES: {missing}"


def test_the_table_names_real_settings_and_says_why_when_there_is_none() -> None:
    fields = set(Settings.model_fields)
    for rule in RULES:
        assert set(rule.settings) <= fields, rule.reads
        assert rule.meaning, rule.reads
    assert {name.lower() for name in SHARED_NAMES} <= fields


def test_every_variable_without_an_equivalent_says_why() -> None:
    everything = {name: "True" for name in SUBGEN_VARIABLES} | {
        "TRANSCRIBE_FOLDERS": "/tv",
        "TRANSCRIBE_DEVICE": "cuda",
        "TRANSCRIBE_OR_TRANSLATE": "transcribe",
        "SUBTITLE_LANGUAGE_NAMING_TYPE": "NAME",
        "SUBGEN_KWARGS": "{}",
        "FORCE_DETECTED_LANGUAGE_TO": "en",
        "SKIP_IF_AUDIO_LANGUAGES": "jpn",
        "SKIP_IF_AUDIO_TRACK_IS": "jpn",
        **{name: "9000" for name in ("WEBHOOK_PORT", "WEBHOOKPORT", "CONCURRENT_TRANSCRIPTIONS")},
        **{name: "30" for name in ("DETECT_LANGUAGE_LENGTH", "DETECT_LANGUAGE_OFFSET", "MODEL_CLEANUP_DELAY")},
    }
    report, _ = read_subgen(everything)
    unsupported = [use for use in report.uses if use.kind == "unsupported"]
    assert len(unsupported) >= 10
    for use in unsupported:
        assert len(use.note) > 20, use.subgen


def test_config_check_lists_aliases_and_what_has_no_equivalent(tmp_path: Path) -> None:
    (tmp_path / "tv").mkdir()
    env = {
        "PATH": "/usr/bin:/bin",
        "HOME": str(tmp_path),
        "WEBHOOKPORT": "9100",
        "TRANSCRIBE_FOLDERS": str(tmp_path / "tv"),
        "TRANSCRIBE_DEVICE": "gpu",
        "PLEXTOKEN": "plex-secret",
        "CUSTOM_REGROUP": "cm_sl=84_sl=42++++++1",
        "SKIPIFINTERNALSUBLANG": "eng",
        "HTTP_PORT": "9200",
        "LOG_LEVEL": "info",
        "DEBUG": "True",
    }
    result = subprocess.run(
        [sys.executable, "-m", "transcriptarr", "config", "check"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "HTTP_PORT=9200" in out and "WHISPER_DEVICE=cuda" in out and f"LIBRARY_PATHS={tmp_path / 'tv'}" in out
    assert "# SubGen settings read (Transcriptarr's own names win where both are set):" in out
    assert "#   TRANSCRIBE_DEVICE -> WHISPER_DEVICE=cuda (gpu means cuda)" in out
    assert f"#   TRANSCRIBE_FOLDERS -> LIBRARY_PATHS={tmp_path / 'tv'}" in out
    assert "#   PLEXTOKEN -> PLEX_TOKEN=********" in out
    assert "#   WEBHOOKPORT=9100: ignored, HTTP_PORT is set and Transcriptarr's own name wins" in out
    assert "#   DEBUG=True: ignored, LOG_LEVEL is set and Transcriptarr's own name wins" in out
    assert "# SubGen settings without an equivalent here (ignored):" in out
    assert "#   CUSTOM_REGROUP=cm_sl=84_sl=42++++++1: subtitle cues follow the CUE_* limits" in out
    assert "#   SKIPIFINTERNALSUBLANG=eng: an embedded subtitle counts when it is in a wanted language" in out
    assert "plex-secret" not in out


def test_config_check_stops_on_a_bad_subgen_value(tmp_path: Path) -> None:
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "WEBHOOK_PORT": "ninety"}
    result = subprocess.run(
        [sys.executable, "-m", "transcriptarr", "config", "check"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 2
    assert result.stderr.strip() == (
        "configuration error: WEBHOOK_PORT (SubGen's name for HTTP_PORT): Input should be a valid integer, "
        "unable to parse string as an integer, got 'ninety'"
    )
    assert "Traceback" not in result.stderr


def test_each_subgen_variable_is_logged_once_with_its_new_name(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WEBHOOKPORT", "9100")
    monkeypatch.setenv("USE_PATH_MAPPING", "True")
    monkeypatch.setenv("PATH_MAPPING_FROM", "/tv")
    monkeypatch.setenv("PATH_MAPPING_TO", "/media/tv")
    monkeypatch.setenv("PLEX_TOKEN", "ours")
    monkeypatch.setenv("PLEXTOKEN", "theirs")
    monkeypatch.setenv("CUSTOM_REGROUP", "default")
    monkeypatch.setenv("LRC_FOR_AUDIO_FILES", "False")
    settings = load_settings()
    with capture_logs() as logs:
        log_subgen_settings(settings.subgen)
    used = {entry["subgen_name"]: entry for entry in logs if entry["event"] == "subgen_setting_used"}
    assert used["WEBHOOKPORT"]["setting"] == "HTTP_PORT" and used["WEBHOOKPORT"]["value"] == "9100"
    for name in ("USE_PATH_MAPPING", "PATH_MAPPING_FROM", "PATH_MAPPING_TO"):
        assert used[name]["setting"] == "PATH_MAPPINGS"
    assert used[None]["setting"] == "TRANSCRIPTARR_MODE"
    assert used["LRC_FOR_AUDIO_FILES"]["setting"] == "AUDIO_LYRICS" and used["LRC_FOR_AUDIO_FILES"]["value"] == "False"
    [overridden] = [entry for entry in logs if entry["event"] == "subgen_setting_overridden"]
    assert overridden["subgen_name"] == "PLEXTOKEN" and overridden["value"] == "********"
    [unsupported] = [entry for entry in logs if entry["event"] == "subgen_setting_unsupported"]
    assert unsupported["subgen_name"] == "CUSTOM_REGROUP" and unsupported["log_level"] == "warning"
    names = [entry["subgen_name"] for entry in logs]
    assert len(names) == len(set(names)), "a variable was logged twice"


def test_a_name_other_programs_use_too_does_not_open_bazarrs_routes(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DEBUG", "true")
    settings = load_settings()
    assert settings.log_level == "debug"
    assert settings.transcriptarr_mode == frozenset({Mode.STANDALONE})


def test_without_subgen_variables_nothing_changes() -> None:
    settings = load_settings()
    assert not settings.subgen
    assert settings.transcriptarr_mode == frozenset({Mode.STANDALONE})
    with capture_logs() as logs:
        log_subgen_settings(settings.subgen)
    assert logs == []
