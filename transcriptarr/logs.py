"""Logging set-up: JSON lines in containers, readable console output on a terminal.

Our own lines (structlog) and the libraries' lines (the standard library's `logging`:
aiohttp, SQLAlchemy, Alembic, faster-whisper, asyncio, Python warnings) go through one
handler on stderr, rendered by the same processors: a container's log is one JSON object
per line, whoever wrote it. Lines logged while a job runs carry its `job_id`, `path` and
`stage` (bound as structlog context variables by the worker). docs/logging.md lists every
event and its fields; that list is the monitoring interface.
"""

from __future__ import annotations

import logging
import sys
from typing import Literal, TextIO

import structlog

LogFormat = Literal["auto", "json", "console"]

# Libraries that say a lot at INFO (every SQL statement, every migration step, every audio
# file); their warnings and errors still come through.
NOISY_LIBRARIES = (
    "aiohttp",
    "aiomysql",
    "aiosqlite",
    "alembic",
    "asyncio",
    "asyncpg",
    "faster_whisper",
    "filelock",
    "httpcore",
    "httpx",
    "huggingface_hub",
    "sqlalchemy",
    "urllib3",
    "watchfiles",
)


def use_json(log_format: LogFormat) -> bool:
    """`auto` means JSON unless stderr is a terminal (a container's log is not)."""
    if log_format == "auto":
        return not sys.stderr.isatty()
    return log_format == "json"


class _StderrHandler(logging.StreamHandler[TextIO]):
    """Writes each rendered line to the current `sys.stderr` (pytest and the demo replace it)."""

    def emit(self, record: logging.LogRecord) -> None:
        self.stream = sys.stderr
        super().emit(record)


def configure_logging(level: str = "info", log_format: LogFormat = "auto") -> None:
    """Set up structlog and the standard library's logging; calling it again replaces the set-up."""
    threshold = logging.getLevelNamesMapping()[level.upper()]
    json_lines = use_json(log_format)
    # Run on every line, ours and the libraries': context (job_id, path, stage), level, logger, time.
    common: list[structlog.typing.Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    renderer: structlog.typing.Processor
    if json_lines:
        renderer = structlog.processors.JSONRenderer()
    else:
        renderer = structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty())
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=common,
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            # JSON gets the traceback as one string field; the console renderer prints it itself.
            *([structlog.processors.format_exc_info] if json_lines else []),
            renderer,
        ],
    )
    handler = _StderrHandler(sys.stderr)
    handler.setFormatter(formatter)

    root = logging.getLogger()
    for old in [h for h in root.handlers if isinstance(h, _StderrHandler)]:
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(threshold)
    for name in NOISY_LIBRARIES:
        logging.getLogger(name).setLevel(max(threshold, logging.WARNING))
    logging.captureWarnings(True)

    structlog.configure(
        processors=[*common, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        wrapper_class=structlog.make_filtering_bound_logger(threshold),
        logger_factory=structlog.stdlib.LoggerFactory(),
        # Not cached: tests swap the configuration (structlog.testing.capture_logs).
        cache_logger_on_first_use=False,
    )
