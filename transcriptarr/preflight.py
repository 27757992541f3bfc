"""Checks before `run` or `worker` starts anything: each problem is one line naming its setting.

A model that cannot be loaded, or a folder the service cannot write to, would otherwise show up
later and worse: every job failing four times after extracting its audio, or a traceback from
deep inside start-up. The CLI prints `configuration error: ...` and exits with status 2.
"""

from __future__ import annotations

from transcriptarr.db.problems import sqlite_problem
from transcriptarr.settings import ConfigError, Settings
from transcriptarr.workers.models import model_problem
from transcriptarr.writable import folder_problem


def needs_model(settings: Settings) -> bool:
    """Workers transcribe; the provider's detect-language runs the model in the HTTP server itself."""
    return settings.workers > 0 or (settings.http_enabled and settings.provider_enabled)


def preflight(settings: Settings) -> None:
    """Raise ConfigError with every problem found, one `VARIABLE: reason` each."""
    problems = []
    if (database := sqlite_problem(settings.async_database_url)) is not None:
        problems.append(f"DATABASE_URL: {database}")
    if (data := folder_problem(settings.data_dir)) is not None:
        problems.append(f"DATA_DIR: {data}; set DATA_DIR to a writable folder")
    if needs_model(settings):
        model = model_problem(settings.whisper_model, model_dir=settings.model_dir, offline=settings.offline)
        if model is not None:
            problems.append(f"WHISPER_MODEL: {model}")
    if problems:
        raise ConfigError("; ".join(problems))
