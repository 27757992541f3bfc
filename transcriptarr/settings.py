"""Configuration: environment variables and an optional `.env` file.

Every variable of the seed design keeps its name and meaning; the rest have
defaults a home server can run with. `load_settings()` turns any bad value into
one `ConfigError` line naming the variable, which the CLI prints with exit
status 2.
"""

from __future__ import annotations

import ipaddress
import json
import socket
from collections.abc import Callable
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    Field,
    PrivateAttr,
    SecretStr,
    ValidationError,
    ValidationInfo,
    ValidatorFunctionWrapHandler,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, NoDecode, PydanticBaseSettingsSource, SettingsConfigDict
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError

from transcriptarr.policy.naming import check_name_part
from transcriptarr.policy.output_formats import SidecarFormat
from transcriptarr.policy.paths import PathMapper
from transcriptarr.policy.whisper_options import parse_extra_args
from transcriptarr.subgen_compat import REPORT_KEY, SubgenReport, SubgenSource, SubgenValueError


class ConfigError(Exception):
    """A configuration value that stops start-up; the message is one line for the user."""


class Mode(StrEnum):
    STANDALONE = "standalone"
    PROVIDER = "provider"


class Quality(StrEnum):
    FAST = "fast"
    BALANCED = "balanced"
    BEST = "best"


# Seed README URLs name sync drivers; map them to the async drivers we ship.
_ASYNC_DRIVERS = {
    "sqlite": "sqlite+aiosqlite",
    "postgresql": "postgresql+asyncpg",
    "postgres": "postgresql+asyncpg",
    "mysql": "mysql+aiomysql",
    "mariadb": "mariadb+aiomysql",
}


def to_async_url(raw: str) -> URL:
    """Parse a user's database URL and switch it to the matching async driver."""
    try:
        url = make_url(raw)
    except ArgumentError as exc:
        raise ValueError(
            "not a database URL; use e.g. sqlite:///./transcriptarr.db or postgresql://user:password@host:5432/db"
        ) from exc
    backend = url.get_backend_name()
    if backend not in _ASYNC_DRIVERS:
        raise ValueError(f"unsupported database '{backend}'; use sqlite, postgresql or mariadb/mysql")
    url = url.set(drivername=_ASYNC_DRIVERS[url.drivername.split("+")[0]])
    if backend == "sqlite":
        if not url.database or url.database == ":memory:":
            raise ValueError("SQLite needs a file path (a queue in memory is lost on restart)")
    elif not url.host or not url.database:
        raise ValueError(f"{backend} URL needs a host and a database name")
    return url


def _split(value: Any, sep: str) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        return [part.strip() for part in value.split(sep) if part.strip()]
    return [str(part).strip() for part in value if str(part).strip()]


class Settings(BaseSettings):
    """Everything that can be configured; each field is one environment variable."""

    model_config = SettingsConfigDict(env_file=".env", env_file_encoding="utf-8", extra="ignore", case_sensitive=False)

    # --- seed design variables ---
    database_url: str = Field(
        "sqlite:///./transcriptarr.db", description="Database URL: sqlite, postgresql or mariadb."
    )
    transcriptarr_mode: Annotated[frozenset[Mode], NoDecode] = Field(
        frozenset({Mode.STANDALONE}),
        description="standalone (scan libraries), provider (Bazarr endpoint) or standalone,provider.",
    )
    library_paths: Annotated[list[Path], NoDecode] = Field(
        default_factory=list, description="Media folders to watch, separated by |."
    )
    auto_scan_enabled: bool = Field(True, description="Rescan the libraries periodically.")
    scan_interval_minutes: float = Field(360, gt=0, description="Minutes between periodic rescans.")
    bazarr_url: str | None = Field(
        None, description="Bazarr base URL with its URL base, e.g. http://bazarr:6767, for its REST API integration."
    )
    bazarr_api_key: SecretStr | None = Field(None, description="Bazarr API key (Settings > General > Security).")

    # --- roles (scale-out: one node discovers and serves, others only transcribe) ---
    discovery_enabled: bool = Field(
        True, description="Watch and scan the libraries and pull Bazarr's wanted lists on this node."
    )

    # --- integrations ---
    path_mappings: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="from:to pairs separated by |, for paths sent by Bazarr or media servers, e.g. /tv:/media/tv.",
    )
    bazarr_sync_minutes: float = Field(
        30, ge=0, description="Minutes between pulls of Bazarr's wanted lists (0: never; needs BAZARR_URL)."
    )
    bazarr_after_write: Literal["scan-disk", "upload", "none"] = Field(
        "scan-disk", description="How Bazarr learns of a subtitle written for its wanted list: scan-disk or upload."
    )
    bazarr_timeout_seconds: float = Field(
        300, gt=0, description="Timeout of calls to Bazarr's API (scan-disk of a big series is slow)."
    )
    jellyfin_url: str | None = Field(None, description="Jellyfin URL, to resolve webhook items and refresh them.")
    jellyfin_api_key: SecretStr | None = Field(None, description="Jellyfin API key (Dashboard > API Keys).")
    emby_url: str | None = Field(None, description="Emby URL, to resolve webhook items and refresh them.")
    emby_api_key: SecretStr | None = Field(None, description="Emby API key.")
    plex_url: str | None = Field(None, description="Plex URL, to resolve webhook items and refresh them.")
    plex_token: SecretStr | None = Field(None, description="Plex token (X-Plex-Token).")
    plex_queue_ahead: Literal["off", "next-episode", "season", "series"] = Field(
        "off",
        description="When Plex tells of an episode (WEBHOOK_EVENTS: added, played), also queue the episodes after "
        "it: next-episode, the rest of its season, or the rest of the series, behind it at webhook priority, so "
        "that they have subtitles before they are watched. Needs PLEX_URL and PLEX_TOKEN.",
    )
    media_server_refresh: bool = Field(
        True, description="Ask the media server to refresh an item after writing its subtitle."
    )
    webhook_events: Annotated[list[str], NoDecode] = Field(
        default_factory=lambda: ["added", "played"],
        description="Media-server events that queue a file: added, played (comma-separated).",
    )
    notify_url: str | None = Field(
        None, description="URL that receives a JSON POST when a job completes or finally fails."
    )
    notify_timeout_seconds: float = Field(10, gt=0, description="Timeout of one notification POST.")
    notify_attempts: int = Field(5, ge=1, le=50, description="Tries per notification before giving up.")

    # --- queue and database ---
    node_name: str = Field(default_factory=socket.gethostname, description="Name of this node in the worker list.")
    max_retries: int = Field(3, ge=0, le=100, description="Retries of a transient failure.")
    retry_backoff_seconds: float = Field(30, ge=0, description="First retry delay; doubles each time.")
    queue_poll_seconds: float = Field(
        2, gt=0, le=300, description="How often idle workers look for jobs (PostgreSQL also wakes them at once)."
    )
    lease_seconds: float = Field(60, gt=1, description="Lease a worker holds on a job between heartbeats.")
    job_retention_hours: float = Field(168, gt=0, description="Keep finished jobs this long.")
    result_retention_hours: float = Field(48, ge=24, description="Keep Bazarr results for retries.")

    # --- workers and whisper ---
    workers: int = Field(1, ge=0, le=64, description="Transcription workers per device (0: no workers).")
    whisper_device: str = Field("auto", description="auto, cpu, cuda or cuda:N.")
    whisper_devices: Annotated[list[str], NoDecode] = Field(
        default_factory=list, description="Several GPUs, e.g. cuda:0|cuda:1 (overrides WHISPER_DEVICE)."
    )
    whisper_model: str = Field("small", description="Model size name, local CTranslate2 folder or bundled:tiny.en.")
    whisper_compute_type: str = Field("auto", description="auto, int8, float16, int8_float16, float32.")
    whisper_threads: int = Field(0, ge=0, description="CPU threads per worker (0: let CTranslate2 decide).")
    worker_nice: int = Field(
        10,
        ge=-20,
        le=19,
        description="CPU priority (nice) of transcription and its ffmpeg: 10 lets a media server beside it win, "
        "0 transcribes at full speed, 19 uses only idle CPU; below 0 needs root or CAP_SYS_NICE.",
    )
    model_dir: Path = Field(Path("./models"), description="Where downloaded models are kept.")
    offline: bool = Field(False, description="Never download models; use model_dir only.")
    model_idle_unload_seconds: float = Field(300, ge=0, description="Unload an unused model after this long.")
    cpu_fallback: bool = Field(True, description="Retry on CPU when the GPU fails (out of memory).")
    quality: Quality = Field(Quality.BALANCED, description="fast, balanced or best.")
    max_job_minutes: float = Field(240, gt=0, description="Longest a single transcription may run.")
    shutdown_grace_seconds: float = Field(
        40,
        ge=0,
        description="On SIGTERM the process is gone within this long (5 s at least): running jobs may finish "
        "until the last 10 s of it (half, if shorter), then go back to the queue with their checkpoint. Keep the "
        "container's stop timeout above it.",
    )
    checkpoint_seconds: float = Field(
        30,
        ge=0,
        description="A running transcription stores what it finished every this many seconds of audio, so that a "
        "restart continues from there instead of starting over (0: never).",
    )
    whisper_initial_prompt: str | None = Field(
        None, description="Text Whisper reads as if it came before the audio: names, spelling, style (docs/presets.md)."
    )
    whisper_hotwords: str | None = Field(
        None, description="Words and names Whisper should expect, e.g. 'Daenerys Targaryen Westeros'."
    )
    whisper_extra_args: Annotated[dict[str, Any], NoDecode] = Field(
        default_factory=dict,
        description='More faster-whisper transcribe() arguments as JSON, e.g. {"repetition_penalty": 1.1}.',
    )

    # --- languages ---
    target_languages: Annotated[list[str], NoDecode] = Field(
        default_factory=lambda: ["original"],
        description="Wanted subtitle languages; 'original' means the audio's own language.",
    )
    preferred_audio_languages: Annotated[list[str], NoDecode] = Field(
        default_factory=list, description="Audio tracks to prefer, in order."
    )
    limit_to_preferred_audio_languages: bool = Field(
        False, description="Only queue media with an audio track in PREFERRED_AUDIO_LANGUAGES."
    )
    force_language: str | None = Field(None, description="Treat every audio as this language.")
    language_detect_window_seconds: float = Field(
        30, gt=0, le=300, description="Speech per language-detection window (Whisper looks at 30 s)."
    )
    language_detect_offset_seconds: float = Field(
        120, ge=0, description="Skip this much of a long file before detecting (intros, music)."
    )
    language_detect_windows: int = Field(3, ge=1, le=20, description="Windows that vote on the language.")

    # --- library discovery (docs/decisions.md) ---
    library_scan_on_startup: bool = Field(True, description="Scan the library folders when the service starts.")
    library_watch: bool = Field(True, description="Watch the library folders for new, moved and deleted files.")
    library_polling: bool = Field(
        False, description="Poll every library folder instead of using inotify (NFS, SMB, some Docker mounts)."
    )
    library_polling_paths: Annotated[list[str], NoDecode] = Field(
        default_factory=list, description="Library folders to poll, PATH or PATH=SECONDS, separated by |."
    )
    library_poll_interval_seconds: float = Field(30, gt=0, description="Seconds between two polls of a folder.")
    library_stable_seconds: float = Field(
        30, ge=0, description="A new or changed file must stay unchanged this long before it is looked at."
    )
    library_probe_concurrency: int = Field(4, ge=1, le=64, description="ffprobe runs at once during scans.")
    library_priority_order: Literal["newest", "oldest", "smallest", "path"] = Field(
        "newest", description="Order of library jobs within their source: newest, oldest, smallest or path."
    )
    library_video_extensions: Annotated[list[str] | None, NoDecode] = Field(
        None, description="Video file extensions, separated by commas (default: mkv, mp4, avi, ...; see docs)."
    )
    library_audio_extensions: Annotated[list[str], NoDecode] = Field(
        default_factory=list, description="Audio file extensions to transcribe, e.g. mp3,m4b (default: none)."
    )
    library_ignore_globs: Annotated[list[str] | None, NoDecode] = Field(
        None, description="Ignore patterns separated by | (default: samples, extras, trailers; see docs)."
    )
    library_min_duration_seconds: float = Field(60, ge=0, description="Media shorter than this is skipped.")
    library_count_forced_subtitles: bool = Field(False, description="Forced-only subtitles count as subtitles.")
    library_count_image_subtitles: bool = Field(True, description="PGS/VobSub subtitles count as subtitles.")
    library_follow_symlinks: bool = Field(True, description="Follow symlinked folders and files in the libraries.")
    skip_audio_languages: Annotated[list[str], NoDecode] = Field(
        default_factory=list, description="Do not queue media whose audio is in one of these languages."
    )
    skip_unknown_audio_language: bool = Field(
        False, description="Do not queue media whose audio track has no language tag."
    )

    # --- output ---
    subtitle_format: SidecarFormat = Field("srt", description="Sidecar format.")  # policy/output_formats.py
    subtitle_language_code: Literal["alpha2", "alpha3", "alpha3t", "name", "native"] = Field(
        "alpha2",
        description="Language in subtitle names: alpha2 (de), alpha3 (ger), alpha3t (deu), name (German) or "
        "native (Deutsch); SubGen's ISO_639_1, ISO_639_2_B, ISO_639_2_T, NAME, NATIVE also work.",
    )
    subtitle_name_tags: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Name parts before the language, separated by |; {model} is WHISPER_MODEL: subgen|{model} "
        "gives SubGen's Movie.subgen.medium.eng.srt.",
    )
    subtitle_marker: str | None = Field(
        None, description="Extra name part (Movie.en.MARKER.srt); Bazarr ignores such names."
    )
    audio_lyrics: bool = Field(
        True,
        description="Audio files get one .lrc lyrics file; false: a subtitle per wanted language like video.",
    )
    overwrite_foreign_subtitles: bool = Field(False, description="Replace subtitles we did not write.")
    puid: int | None = Field(None, ge=0, description="Owner uid of written files.")
    pgid: int | None = Field(None, ge=0, description="Owner gid of written files.")
    file_mode: str | None = Field(
        None, description="Permissions of written subtitle files (octal); unset: 0666 minus the umask (UMASK)."
    )

    # --- cues (docs/cues.md) ---
    cue_max_lines: int = Field(2, ge=1, le=4, description="Lines per subtitle cue.")
    cue_max_line_chars: int = Field(42, ge=10, description="Characters per line (Latin scripts).")
    cue_max_line_chars_cjk: int = Field(16, ge=4, description="Characters per line (Chinese, Japanese, Korean).")
    cue_max_seconds: float = Field(7.0, gt=0, description="Longest time a cue stays on screen.")
    cue_min_seconds: float = Field(0.8, ge=0, description="Shortest time a cue stays on screen, room allowing.")
    cue_min_gap_seconds: float = Field(0.08, ge=0, description="Gap between two cues.")
    cue_max_cps: float = Field(20.0, gt=0, description="Reading speed limit in characters per second.")

    # --- HTTP ---
    http_enabled: bool = Field(True, description="Serve the HTTP API, status page and Bazarr routes.")
    http_host: str | None = Field(
        None,
        description="Address the HTTP server binds; unset: 127.0.0.1 (this machine only) without API_KEY, "
        "0.0.0.0 with it (the container image sets 0.0.0.0).",
    )
    http_port: int = Field(9000, ge=1, le=65535, description="Port of the HTTP server.")
    http_max_connections: int = Field(
        1024,
        ge=1,
        description="HTTP connections open at once, all clients; lowered to what the open-files limit allows. "
        "When full, the connection idle longest is closed, or the new one gets a 503.",
    )
    http_max_connections_per_client: int = Field(
        256,
        ge=1,
        description="HTTP connections open at once from one address; more get a 503 (raise it behind a proxy).",
    )
    http_header_timeout_seconds: float = Field(
        10,
        gt=0,
        le=600,
        description="A request's headers must arrive within this long, or the connection is closed "
        "(uploads and long waits are not limited).",
    )
    http_keepalive_timeout_seconds: float = Field(
        75, gt=0, le=3600, description="A kept-alive HTTP connection idle this long is closed."
    )
    http_path_prefix: str = Field(
        "", description="Also serve /asr, /detect-language and /status under this prefix, e.g. /whisper."
    )
    api_key: SecretStr | None = Field(
        None, description="Key required by every route but /health, /login and Bazarr's (README: API key)."
    )
    max_upload_mb: int = Field(4096, gt=0, description="Largest Bazarr upload; 413 above it (2 h film: 230 MB).")
    provider_keepalive_seconds: float = Field(
        10, gt=0, le=300, description="Send an interim 100 Continue this often while a Bazarr request waits."
    )
    provider_allowed_networks: Annotated[list[str], NoDecode] = Field(
        default_factory=list, description="Networks (CIDR, comma-separated) allowed on the Bazarr routes; empty: all."
    )
    detect_language_max_seconds: float = Field(
        300, gt=0, description="detect-language reads at most this much of the upload."
    )
    data_dir: Path = Field(Path("./data"), description="Spool and working files.")

    # --- logs ---
    log_level: Literal["debug", "info", "warning", "error"] = Field("info", description="Log level.")
    log_format: Literal["auto", "json", "console"] = Field(
        "auto", description="json in containers, console on a terminal, or auto."
    )
    progress_log_seconds: float = Field(
        60, ge=0, description="Log a running job's progress, speed and ETA this often (0: never)."
    )

    @field_validator("database_url")
    @classmethod
    def _check_url(cls, value: str) -> str:
        to_async_url(value)
        return value

    @field_validator("transcriptarr_mode", mode="before")
    @classmethod
    def _parse_mode(cls, value: Any) -> frozenset[Mode]:
        parts = _split(value, ",") if not isinstance(value, frozenset) else list(value)
        if not parts:
            raise ValueError("must be standalone, provider or standalone,provider")
        modes = set()
        for part in parts:
            try:
                modes.add(Mode(str(part).lower()))
            except ValueError:
                raise ValueError(f"unknown mode '{part}'; use standalone, provider or standalone,provider") from None
        return frozenset(modes)

    @field_validator("library_paths", mode="before")
    @classmethod
    def _parse_paths(cls, value: Any) -> list[Path]:
        paths = [Path(part).expanduser() for part in _split(value, "|")]
        for path in paths:
            if not path.is_dir():
                raise ValueError(f"folder '{path}' does not exist or is not a directory")
        return paths

    @field_validator("target_languages", "preferred_audio_languages", "skip_audio_languages", mode="before")
    @classmethod
    def _parse_languages(cls, value: Any) -> list[str]:
        if isinstance(value, str):
            value = value.replace("|", ",")  # SubGen's lists (PREFERRED_AUDIO_LANGUAGES=eng|jpn)
        return [part.lower() for part in _split(value, ",")]

    @field_validator("subtitle_language_code", mode="before")
    @classmethod
    def _parse_language_code(cls, value: Any) -> Any:
        subgen = {"ISO_639_1": "alpha2", "ISO_639_2_B": "alpha3", "ISO_639_2_T": "alpha3t"}
        return subgen.get(value.strip().upper(), value.strip().lower()) if isinstance(value, str) else value

    @field_validator("subtitle_name_tags", mode="before")
    @classmethod
    def _parse_name_tags(cls, value: Any) -> list[str]:
        tags = _split(value, "|")
        for tag in tags:
            check_name_part(tag.replace("{model}", "model"))  # a ValueError naming the bad part
        return tags

    @field_validator("library_polling_paths", "library_ignore_globs", mode="before")
    @classmethod
    def _parse_bar_lists(cls, value: Any) -> list[str] | None:
        return None if value is None else _split(value, "|")

    @field_validator("library_video_extensions", "library_audio_extensions", mode="before")
    @classmethod
    def _parse_extensions(cls, value: Any) -> list[str] | None:
        return None if value is None else [part.lower().lstrip(".") for part in _split(value, ",")]

    @field_validator("provider_allowed_networks", mode="before")
    @classmethod
    def _parse_networks(cls, value: Any) -> list[str]:
        networks = _split(value, ",")
        for network in networks:
            try:
                ipaddress.ip_network(network, strict=False)
            except ValueError:
                raise ValueError(f"'{network}' is not a network like 192.168.1.0/24") from None
        return networks

    @field_validator("path_mappings", mode="before")
    @classmethod
    def _parse_mappings(cls, value: Any) -> list[str]:
        entries = _split(value, "|")
        PathMapper.parse(entries)  # raises PathMappingError (a ValueError) with the bad entry
        return entries

    @field_validator("webhook_events", mode="before")
    @classmethod
    def _parse_events(cls, value: Any) -> list[str]:
        events = [part.lower() for part in _split(value, ",")]
        for event in events:
            if event not in ("added", "played"):
                raise ValueError(f"unknown event '{event}'; use added, played or added,played")
        return events

    @field_validator("bazarr_url", "jellyfin_url", "emby_url", "plex_url", "notify_url")
    @classmethod
    def _check_http_url(cls, value: str | None) -> str | None:
        if value is None or not value.strip():
            return None
        value = value.strip().rstrip("/")
        if not value.startswith(("http://", "https://")):
            raise ValueError(f"'{value}' is not an http:// or https:// URL")
        return value

    @field_validator("whisper_devices", mode="before")
    @classmethod
    def _parse_devices(cls, value: Any) -> list[str]:
        return _split(value, "|")

    @field_validator("whisper_device")
    @classmethod
    def _check_device(cls, value: str) -> str:
        value = value.lower()
        if value in ("auto", "cpu", "cuda") or (value.startswith("cuda:") and value[5:].isdigit()):
            return value
        raise ValueError(f"unknown device '{value}'; use auto, cpu, cuda or cuda:N")

    @field_validator("whisper_initial_prompt", "whisper_hotwords")
    @classmethod
    def _blank_is_none(cls, value: str | None) -> str | None:
        return value.strip() or None if value is not None else None

    @field_validator("whisper_extra_args", mode="before")
    @classmethod
    def _check_extra_args(cls, value: Any, info: ValidationInfo) -> dict[str, Any]:
        if not value:
            return {}
        # faster-whisper is only loaded when there is something to check against it (policy/whisper_options.py).
        args = parse_extra_args(value)
        for name in ("initial_prompt", "hotwords"):
            if name in args and info.data.get(f"whisper_{name}"):
                raise ValueError(f"'{name}' is also set as WHISPER_{name.upper()}; keep one of the two")
        return args

    @field_validator("limit_to_preferred_audio_languages")
    @classmethod
    def _check_limit(cls, value: bool, info: ValidationInfo) -> bool:
        if value and not info.data.get("preferred_audio_languages"):
            raise ValueError(
                "needs PREFERRED_AUDIO_LANGUAGES, the languages to keep, e.g. PREFERRED_AUDIO_LANGUAGES=en,ja "
                "(SubGen's default was eng)"
            )
        return value

    @field_validator("file_mode")
    @classmethod
    def _check_mode(cls, value: str | None) -> str | None:
        if not value:
            return None  # follow the umask
        try:
            int(value, 8)
        except ValueError:
            raise ValueError(f"'{value}' is not an octal mode like 0644") from None
        return value

    # --- SubGen's names (transcriptarr/subgen_compat.py) ---
    _subgen: SubgenReport = PrivateAttr(default_factory=SubgenReport)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # After our own names, so that they win; SubGen's read from the .env file and the environment.
        subgen = SubgenSource(settings_cls, dotenv_settings, env_settings)
        return init_settings, env_settings, dotenv_settings, subgen, file_secret_settings

    @model_validator(mode="wrap")
    @classmethod
    def _name_subgen_variables(cls, data: Any, handler: ValidatorFunctionWrapHandler) -> Any:
        """A bad value that came from a SubGen variable is reported under SubGen's name."""
        report = data.pop(REPORT_KEY, None) if isinstance(data, dict) else None
        try:
            settings = handler(data)
        except ValidationError as exc:
            if not isinstance(report, SubgenReport):
                raise
            raise ConfigError("; ".join(_describe(error, report.label) for error in exc.errors())) from None
        if isinstance(report, SubgenReport) and isinstance(settings, Settings):
            settings._subgen = report
        return settings

    @property
    def subgen(self) -> SubgenReport:
        """The SubGen variables read at start-up, and what became of them."""
        return self._subgen

    # --- derived values ---
    @property
    def async_database_url(self) -> URL:
        return to_async_url(self.database_url)

    @property
    def bind_host(self) -> str:
        """HTTP_HOST, or when unset: loopback without API_KEY (nobody else can reach an open API), all with it."""
        if self.http_host and self.http_host.strip():
            return self.http_host.strip()
        has_key = self.api_key is not None and bool(self.api_key.get_secret_value())
        return "0.0.0.0" if has_key else "127.0.0.1"  # noqa: S104 - with a key, reachable on purpose

    @property
    def provider_enabled(self) -> bool:
        return Mode.PROVIDER in self.transcriptarr_mode

    @property
    def standalone_enabled(self) -> bool:
        return Mode.STANDALONE in self.transcriptarr_mode

    def masked(self) -> dict[str, str]:
        """The effective configuration as ENV_NAME -> text, secrets and passwords hidden."""
        shown: dict[str, str] = {}
        for name in type(self).model_fields:
            value = getattr(self, name)
            if isinstance(value, SecretStr):
                text = "********" if value.get_secret_value() else ""
            elif name == "database_url":
                text = make_url(value).render_as_string(hide_password=True)
            elif isinstance(value, frozenset):
                text = ",".join(sorted(str(v) for v in value))
            elif isinstance(value, list):
                text = "|".join(str(v) for v in value)
            elif isinstance(value, dict):
                text = json.dumps(value) if value else ""
            elif value is None:
                text = ""
            else:
                text = str(value)
            shown[name.upper()] = text
        return shown


def _describe(error: Any, label: Callable[[str], str | None] | None = None) -> str:
    field = str(error["loc"][0]).upper() if error["loc"] else "configuration"
    if label is not None and error["loc"]:
        field = label(str(error["loc"][0])) or field
    message = str(error["msg"]).removeprefix("Value error, ")
    value = error.get("input")
    if error["type"] in ("float_parsing", "int_parsing", "bool_parsing") and value is not None:
        message = f"{message}, got '{value}'"
    return f"{field}: {message}"


def load_settings(**overrides: Any) -> Settings:
    """Read the configuration; raise ConfigError with one line per bad variable."""
    try:
        return Settings(**overrides)
    except SubgenValueError as exc:
        raise ConfigError(str(exc)) from None
    except ValidationError as exc:
        lines = [_describe(error) for error in exc.errors()]
        raise ConfigError("; ".join(lines)) from None
