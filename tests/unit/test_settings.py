"""Configuration: seed variables, URL mapping, and one clear line per bad value."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from transcriptarr.settings import ConfigError, Mode, load_settings, to_async_url
from transcriptarr.settings_doc import render_env

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Tests see only the variables they set (and no .env from the checkout)."""
    monkeypatch.chdir(tmp_path)
    for name in ("DATABASE_URL", "TRANSCRIPTARR_MODE", "LIBRARY_PATHS", "SCAN_INTERVAL_MINUTES", "API_KEY"):
        monkeypatch.delenv(name, raising=False)


@pytest.mark.parametrize(
    ("raw", "driver"),
    [
        ("sqlite:///./x.db", "sqlite+aiosqlite"),
        ("postgresql://user:pw@host:5432/db", "postgresql+asyncpg"),
        ("postgres://user:pw@host/db", "postgresql+asyncpg"),
        ("postgresql+psycopg2://user:pw@host/db", "postgresql+asyncpg"),
        ("mariadb+pymysql://user:pw@host:3306/db", "mariadb+aiomysql"),
        ("mysql://user:pw@host/db", "mysql+aiomysql"),
    ],
)
def test_seed_urls_map_to_async_drivers(raw: str, driver: str) -> None:
    url = to_async_url(raw)
    assert url.drivername == driver
    assert url.database in ("./x.db", "db")


def test_seed_variables_keep_their_names(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    movies, shows = tmp_path / "movies", tmp_path / "tv shows"
    movies.mkdir()
    shows.mkdir()
    monkeypatch.setenv("TRANSCRIPTARR_MODE", "standalone,provider")
    monkeypatch.setenv("LIBRARY_PATHS", f"{movies}|{shows}")
    monkeypatch.setenv("AUTO_SCAN_ENABLED", "false")
    monkeypatch.setenv("SCAN_INTERVAL_MINUTES", "15")
    monkeypatch.setenv("BAZARR_URL", "http://bazarr:6767")
    monkeypatch.setenv("BAZARR_API_KEY", "secret-key")
    settings = load_settings()
    assert settings.transcriptarr_mode == {Mode.STANDALONE, Mode.PROVIDER}
    assert settings.library_paths == [movies, shows]
    assert not settings.auto_scan_enabled
    assert settings.scan_interval_minutes == 15
    assert settings.bazarr_api_key is not None
    assert settings.bazarr_api_key.get_secret_value() == "secret-key"


def test_dotenv_file_is_read(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text("HTTP_PORT=9123\nTARGET_LANGUAGES=en,de\n")
    settings = load_settings()
    assert settings.http_port == 9123
    assert settings.target_languages == ["en", "de"]


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("TRANSCRIPTARR_MODE", "standlone", "TRANSCRIPTARR_MODE: unknown mode 'standlone'"),
        ("SCAN_INTERVAL_MINUTES", "often", "SCAN_INTERVAL_MINUTES: Input should be a valid number"),
        ("LIBRARY_PATHS", "/no/such/folder", "LIBRARY_PATHS: folder '/no/such/folder' does not exist"),
        ("DATABASE_URL", "not a url", "DATABASE_URL: not a database URL"),
        ("DATABASE_URL", "oracle://u:p@h/db", "DATABASE_URL: unsupported database 'oracle'"),
        ("WHISPER_DEVICE", "gpu", "WHISPER_DEVICE: unknown device 'gpu'"),
        ("HTTP_PORT", "99999", "HTTP_PORT: Input should be less than or equal to 65535"),
    ],
)
def test_bad_value_is_one_clear_line(monkeypatch: pytest.MonkeyPatch, name: str, value: str, message: str) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(ConfigError) as caught:
        load_settings()
    assert str(caught.value).startswith(message)
    assert "\n" not in str(caught.value)


def test_bad_value_stops_the_cli_with_status_2_and_no_traceback(tmp_path: Path) -> None:
    env = {"PATH": "/usr/bin:/bin", "SCAN_INTERVAL_MINUTES": "abc", "HOME": str(tmp_path)}
    result = subprocess.run(
        [sys.executable, "-m", "transcriptarr", "status"], cwd=tmp_path, env=env, capture_output=True, text=True
    )
    assert result.returncode == 2
    assert result.stderr.strip() == (
        "configuration error: SCAN_INTERVAL_MINUTES: Input should be a valid number, "
        "unable to parse string as a number, got 'abc'"
    )
    assert "Traceback" not in result.stderr


def test_config_check_masks_secrets(tmp_path: Path) -> None:
    env = {
        "PATH": "/usr/bin:/bin",
        "HOME": str(tmp_path),
        "DATABASE_URL": "postgresql://tr:hunter2@db:5432/transcriptarr",
        "API_KEY": "my-api-key",
        "BAZARR_API_KEY": "bazarr-key",
    }
    result = subprocess.run(
        [sys.executable, "-m", "transcriptarr", "config", "check"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr
    assert "DATABASE_URL=postgresql://tr:***@db:5432/transcriptarr" in result.stdout
    assert "API_KEY=********" in result.stdout
    for secret in ("hunter2", "my-api-key", "bazarr-key"):
        assert secret not in result.stdout


def test_example_env_documents_every_variable() -> None:
    example = (REPO / "config" / "transcriptarr.example.env").read_text()
    assert example == render_env(), "regenerate: python -m transcriptarr.settings_doc env > config/..."


def test_readme_configuration_reference_is_generated_from_the_settings() -> None:
    from transcriptarr.settings_doc import render_markdown

    readme = (REPO / "README.md").read_text()
    block = readme.split("<!-- settings:begin -->\n", 1)[1].split("<!-- settings:end -->", 1)[0]
    assert block == render_markdown(), "regenerate: python -m transcriptarr.settings_doc markdown"
