"""What the HTTP routes are given: `ApiDeps`, built by the composition root (service.py), not the whole service.

The API sits beside the engine, not above it: it never imports `transcriptarr.workers`. What it needs of the
engine comes in as small protocols and callables that the composition root fills from the real parts (the
worker pool, the model manager):

- `pool`: this node's workers, to wake them after queueing and to show the live progress of their jobs;
- `detect_language`: POST /detect-language's inference, run off the event loop by whoever provides it.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    import numpy as np
    from numpy.typing import NDArray

    from transcriptarr.db.database import Database
    from transcriptarr.db.models import Stage
    from transcriptarr.library import Library
    from transcriptarr.policy.paths import PathMapper
    from transcriptarr.queue.events import JobEvents
    from transcriptarr.queue.followups import FollowUpStore
    from transcriptarr.queue.jobqueue import JobQueue
    from transcriptarr.queue.registry import WorkerRegistry
    from transcriptarr.settings import Settings
    from transcriptarr.subtitles.registry import SubtitleRegistry

# Runs a library rescan now and says what it found (POST /api/scan; None without a running library).
ScanHook = Callable[[], Awaitable[dict[str, Any]]]


class LiveJob(Protocol):
    """A job running on this node: its progress is fresher here than in the database."""

    @property
    def progress(self) -> float: ...  # 0..100

    @property
    def stage(self) -> Stage: ...


class NodePool(Protocol):
    """This node's transcription workers, as far as the routes need them."""

    @property
    def devices(self) -> tuple[str, ...]: ...

    def size(self) -> int:
        """How many workers this node runs (0: an API-only node)."""
        ...

    def running(self) -> Mapping[int, LiveJob]:
        """The jobs this node's workers run now, by job id."""
        ...

    def wake(self) -> None:
        """A job was queued or queued again: an idle worker looks now, not at its next poll."""
        ...


class DetectedLanguage(Protocol):
    @property
    def code(self) -> str: ...  # Whisper's code

    @property
    def probability(self) -> float: ...


# The language heard in 16 kHz mono samples, or None when it cannot tell; runs the model off the event loop.
DetectLanguage = Callable[["NDArray[np.float32]"], Awaitable[DetectedLanguage | None]]


@dataclass(frozen=True)
class ApiDeps:
    settings: Settings
    db: Database  # for /health: does it answer, does a write wait
    queue: JobQueue
    events: JobEvents  # this node's job events (waiting requests, /api/events, metrics)
    subtitles: SubtitleRegistry  # the subtitles written, for answering Bazarr from the library
    workers: WorkerRegistry  # every node's workers, from the database
    followups: FollowUpStore  # what each job still has to tell others
    paths: PathMapper  # PATH_MAPPINGS
    pool: NodePool
    detect_language: DetectLanguage
    # The library's rules decide what a webhook queues; None without LIBRARY_PATHS.
    library: Library | None = None
    scan: ScanHook | None = None
