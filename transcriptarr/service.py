"""The composition root: builds every part from the settings and runs them together."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, Any

import structlog

from transcriptarr.cpu_priority import check_worker_nice
from transcriptarr.db.database import Database
from transcriptarr.db.outage import watch_database
from transcriptarr.db.problems import sqlite_file, sqlite_problem
from transcriptarr.db.sqlite_lock import SqliteInUse, in_use_message, sqlite_node_lock
from transcriptarr.db.sqlite_watch import SqliteFileWatch, watch_sqlite_file
from transcriptarr.fd_limit import raise_open_files_limit
from transcriptarr.integrations.bazarr_sync import bazarr_sync_from_settings
from transcriptarr.integrations.followups import FollowUps
from transcriptarr.integrations.wiring import build_followups
from transcriptarr.library import Library, LibraryConfig
from transcriptarr.logs import configure_logging
from transcriptarr.policy.naming import SubtitleNaming
from transcriptarr.policy.paths import PathMapper
from transcriptarr.policy.whisper_options import warn_about_whisper_settings
from transcriptarr.queue.events import JobEvents
from transcriptarr.queue.jobqueue import JobQueue
from transcriptarr.queue.leftovers import JobFolders, remove_leftovers
from transcriptarr.queue.maintenance import keep_queue_healthy
from transcriptarr.queue.registry import WorkerRegistry, keep_node_registered, same_name_still_running
from transcriptarr.settings import Settings
from transcriptarr.shutdown import StopBudget, StopOnSignals
from transcriptarr.startup import StartupError, open_storage
from transcriptarr.subgen_compat import log_subgen_settings
from transcriptarr.subtitles.cues import CueRules
from transcriptarr.subtitles.registry import SubtitleRegistry
from transcriptarr.workers.job_runner import EngineConfig, JobContext, JobRunner, Outcome
from transcriptarr.workers.models import ModelManager, WhisperLoader, resolve_device
from transcriptarr.workers.pool import PoolConfig, PoolSummary, WorkerPool
from transcriptarr.workers.upload_language import UploadLanguage

if TYPE_CHECKING:
    from transcriptarr.api.dependencies import ApiDeps, ScanHook

log = structlog.get_logger(__name__)


@dataclass
class Components:
    settings: Settings
    db: Database
    queue: JobQueue
    workers: WorkerRegistry
    subtitles: SubtitleRegistry
    models: ModelManager
    runner: JobRunner
    pool: WorkerPool
    events: JobEvents
    followups: FollowUps
    paths: PathMapper
    library: Library | None = None  # standalone mode with LIBRARY_PATHS


def devices(settings: Settings) -> tuple[str, ...]:
    """The devices to run workers on; `auto` becomes the first GPU, or the CPU."""
    if settings.whisper_devices:
        return tuple(settings.whisper_devices)
    if settings.whisper_device == "auto":
        device, index = resolve_device("auto")
        return (f"cuda:{index}" if device == "cuda" else "cpu",)
    return (settings.whisper_device,)


def engine_config(settings: Settings) -> EngineConfig:
    return EngineConfig(
        model=settings.whisper_model,
        device=settings.whisper_device,
        cpu_fallback=settings.cpu_fallback,
        preferred_audio_languages=tuple(settings.preferred_audio_languages),
        force_language=settings.force_language,
        naming=SubtitleNaming.from_settings(settings),
        overwrite_foreign=settings.overwrite_foreign_subtitles,
        file_mode=int(settings.file_mode, 8) if settings.file_mode else None,
        uid=settings.puid,
        gid=settings.pgid,
        work_dir=JobFolders.from_settings(settings).work_dir,
        worker_nice=settings.worker_nice,
        checkpoint_seconds=settings.checkpoint_seconds,
        detect_window_seconds=settings.language_detect_window_seconds,
        detect_offset_seconds=settings.language_detect_offset_seconds,
        detect_windows=settings.language_detect_windows,
        cue_rules=CueRules(
            max_lines=settings.cue_max_lines,
            max_line_chars=settings.cue_max_line_chars,
            max_line_chars_cjk=settings.cue_max_line_chars_cjk,
            max_duration=settings.cue_max_seconds,
            min_duration=min(settings.cue_min_seconds, settings.cue_max_seconds),
            min_gap=settings.cue_min_gap_seconds,
            max_cps=settings.cue_max_cps,
        ),
        initial_prompt=settings.whisper_initial_prompt,
        hotwords=settings.whisper_hotwords,
        extra_args=settings.whisper_extra_args,
    )


@contextlib.asynccontextmanager
async def build(settings: Settings) -> AsyncIterator[Components]:
    """Every part of the service, wired together; closed in reverse order on exit."""
    async with open_storage(settings) as storage:  # StartupError when the database does not answer
        db, queue, workers, subtitles = storage.db, storage.queue, storage.workers, storage.subtitles
        if storage.upgrade is not None and storage.upgrade.before != storage.upgrade.after:
            upgrade = storage.upgrade
            log.info("database_upgraded", database=db.describe(), before=upgrade.before, after=upgrade.after)
        run_on = devices(settings)
        loader = WhisperLoader(
            model_dir=settings.model_dir,
            offline=settings.offline,
            cpu_threads=settings.whisper_threads,
            num_workers=max(1, settings.workers),
            nice=settings.worker_nice,
        )
        models = ModelManager(
            loader,
            device=settings.whisper_device,
            compute_type=settings.whisper_compute_type,
            idle_unload_seconds=settings.model_idle_unload_seconds or None,
        )
        runner = JobRunner(engine_config(settings), models, subtitles)

        async def run_job(ctx: JobContext, device: str) -> Outcome:
            return await runner.run(ctx, device=device)

        events = JobEvents()
        paths = PathMapper.parse(settings.path_mappings)
        followups = build_followups(settings, db)
        pool = WorkerPool(
            queue,
            workers,
            run_job,
            PoolConfig(
                node=settings.node_name,
                devices=run_on,
                workers_per_device=settings.workers,
                poll_seconds=settings.queue_poll_seconds,
                max_job_seconds=settings.max_job_minutes * 60,
                grace_seconds=StopBudget(settings.shutdown_grace_seconds).jobs_seconds,  # then the hand-back
                progress_log_seconds=settings.progress_log_seconds,
                work_dir=JobFolders.from_settings(settings).work_dir,
            ),
            events,
            after_job=followups.nudge if followups else None,
            followups=followups.plan if followups else None,  # stored with each result (integrations/followups.py)
        )
        library = None
        if settings.standalone_enabled and settings.discovery_enabled and settings.library_paths:
            library = Library(db, queue, LibraryConfig.from_settings(settings), wake=pool.wake)
        try:
            yield Components(
                settings, db, queue, workers, subtitles, models, runner, pool, events, followups, paths, library
            )
        finally:
            await followups.drain(seconds=5)
            await models.aclose()


async def run_service(settings: Settings, *, once: bool = False) -> int:
    """Run until SIGTERM/SIGINT (or, with `once`, until the queue is empty). Exit status."""
    configure_logging(settings.log_level, settings.log_format)
    log_subgen_settings(settings.subgen)  # each SubGen variable read, once, with its name here
    open_files = raise_open_files_limit()  # soft to hard: HTTP connections, ffprobe and the database share it
    stop = asyncio.Event()
    signals = StopOnSignals(stop, StopBudget(settings.shutdown_grace_seconds))  # bounded stop (shutdown.py)
    signals.install()
    try:
        # The SQLite lock is taken before the database is opened and let go after it is closed (db/sqlite_lock.py).
        async with _sqlite_file_lock(settings) as watch, build(settings) as parts, _only_node_on_sqlite(parts):
            signals.on_hurry(parts.pool.hurry)  # a second signal: jobs handed back at once
            return signals.finished(await _serve(parts, stop, once=once, sqlite_watch=watch, open_files=open_files))
    except StartupError as exc:
        log.error("startup_failed", error=str(exc))
        return 1
    finally:
        signals.restore()


def node_role(settings: Settings, pool: WorkerPool, *, once: bool = False) -> str:
    """What this node does, e.g. "api,discovery,workers" (`run`), "workers" (`worker`), "api,discovery" (WORKERS=0)."""
    duties = (
        ("api", settings.http_enabled and not once),
        ("discovery", settings.discovery_enabled and not once),
        ("workers", bool(pool.workers())),
    )
    return ",".join(name for name, on in duties if on) or "none"


@contextlib.asynccontextmanager
async def _sqlite_file_lock(settings: Settings) -> AsyncIterator[SqliteFileWatch | None]:
    """SQLite supports one node: refuse to start beside another (transcriptarr/db/sqlite_lock.py)."""
    url = settings.async_database_url
    path = sqlite_file(url)
    if path is None:
        yield None
        return
    with contextlib.ExitStack() as held:
        try:
            locked = held.enter_context(sqlite_node_lock(str(path), settings.node_name))
        except SqliteInUse as exc:
            raise StartupError(str(exc)) from None
        except OSError as exc:  # the folder or the file cannot be created or opened
            raise StartupError(
                sqlite_problem(url) or f"cannot open the SQLite database {path}: {exc.strerror}; check DATABASE_URL"
            ) from None
        yield SqliteFileWatch(locked.path, locked.fd)


@contextlib.asynccontextmanager
async def _only_node_on_sqlite(parts: Components) -> AsyncIterator[None]:
    """Nor beside a live node of another host: a lock may not reach across a network share."""
    path = sqlite_file(parts.db.url)
    if path is not None:
        other = await parts.workers.live_node_elsewhere(parts.settings.node_name)
        if other is not None:
            raise StartupError(in_use_message(path.resolve(), other.name, other.pid or "unknown", other.host))
    yield


async def _serve(
    parts: Components,
    stop: asyncio.Event,
    *,
    once: bool,
    sqlite_watch: SqliteFileWatch | None = None,
    open_files: int | None = None,
) -> int:
    settings = parts.settings
    # A live node renews its row every lease/3: two renewals and some slack tell a living twin from a dead one.
    twin = await same_name_still_running(parts.workers, settings.node_name, watch_seconds=settings.lease_seconds)
    if twin is not None:
        raise StartupError(
            f"another node named '{settings.node_name}' is running (host {twin.host}, pid {twin.pid}); "
            "give each node its own NODE_NAME (by default the host name: set hostname or NODE_NAME per container)"
        )
    warn_about_whisper_settings(settings)
    recovered = await parts.queue.recover_node(settings.node_name)
    if parts.followups:  # what was pending at the last stop, this node's cut-short attempts included
        await parts.followups.start()
    # Spool and work files of jobs that ended (a cancelled upload, a killed attempt's audio); live ones stay.
    removed = await remove_leftovers(parts.queue, JobFolders.from_settings(settings), when="start-up")
    if parts.pool.workers():
        check_worker_nice(settings.worker_nice)
    role = node_role(settings, parts.pool, once=once)
    devices = parts.pool.config.devices
    await parts.workers.register_node(settings.node_name, role, devices)
    log.info(
        "service_started",
        node=settings.node_name,
        role=role,
        database=parts.db.describe(),
        mode=sorted(m.value for m in settings.transcriptarr_mode),
        devices=list(devices),
        workers=len(parts.pool.workers()),
        model=settings.whisper_model,
        recovered_jobs=recovered,
        removed_work_files=removed.files,
        open_files=open_files,
    )
    background: list[asyncio.Future[Any]] = [
        asyncio.create_task(
            keep_node_registered(
                parts.workers, settings.node_name, role, devices, stop, every=settings.lease_seconds / 3
            )
        ),
        asyncio.create_task(watch_database(parts.db, stop)),  # says when the database goes away and comes back
    ]
    if sqlite_watch is not None:  # deleted, replaced or linked: stop (db/sqlite_watch.py)
        background.append(asyncio.create_task(watch_sqlite_file(sqlite_watch, stop)))
    if parts.pool.workers() and parts.db.backend.name == "postgresql":
        from transcriptarr.queue.wakeups import JobWakeups  # asyncpg: PostgreSQL only

        background.append(asyncio.create_task(JobWakeups.for_database(parts.db, parts.pool.wake).run(stop)))
    if not once:
        background.append(
            asyncio.create_task(
                keep_queue_healthy(
                    parts.queue,
                    parts.workers,
                    stop,
                    job_retention=timedelta(hours=settings.job_retention_hours),
                    result_retention=timedelta(hours=settings.result_retention_hours),
                    leftovers=JobFolders.from_settings(settings),
                    running_here=parts.pool.busy,  # this node's live jobs are never taken for dead ones
                )
            )
        )
    if not once and settings.http_enabled:
        http = await _start_http(parts, stop)
        if http is None:
            stop.set()
            await asyncio.gather(*background, return_exceptions=True)
            return 1
        background.append(http)
    if not once and parts.library is not None:
        background.append(asyncio.create_task(parts.library.run(stop)))
    sync = None if once else bazarr_sync_from_settings(parts.settings, parts.queue, parts.paths, wake=parts.pool.wake)
    if sync is not None:
        background.append(asyncio.create_task(sync.run(stop), name="bazarr-sync"))
    summary: PoolSummary = await parts.pool.run(stop, once=once)
    if not once:
        await stop.wait()  # with WORKERS=0 the pool returns at once; HTTP and the watcher go on
    stop.set()
    await asyncio.gather(*background, return_exceptions=True)
    log.info("service_stopped", **summary.__dict__)
    if sqlite_watch is not None and sqlite_watch.problem is not None:
        parts.db.truncate_journal_at_close()  # SQLite would leave it beside the file that replaced ours
        return 1
    return 1 if once and summary.failed else 0


async def _start_http(parts: Components, stop: asyncio.Event) -> asyncio.Future[Any] | None:
    """Start the HTTP server; None (after logging why) when it cannot listen."""
    from transcriptarr.api import create_app, serve  # aiohttp and prometheus only when serving

    settings = parts.settings
    listening: asyncio.Future[int] = asyncio.get_running_loop().create_future()
    http: asyncio.Future[Any] = asyncio.create_task(
        serve(
            create_app(api_deps(parts, scan=_scan_hook(parts.library))),
            settings.bind_host,
            settings.http_port,
            stop,
            on_started=listening.set_result,
        ),
        name="http",
    )
    await asyncio.wait({http, listening}, return_when=asyncio.FIRST_COMPLETED)
    if http.done():
        log.error("startup_failed", error=str(http.exception()))
        return None
    return http


@dataclass(frozen=True)
class PoolView:
    """The worker pool as the routes see it (api/dependencies.py: NodePool)."""

    pool: WorkerPool

    @property
    def devices(self) -> tuple[str, ...]:
        return self.pool.config.devices

    def size(self) -> int:
        return len(self.pool.workers())

    def running(self) -> dict[int, JobContext]:
        return {ctx.job.id: ctx for ctx in self.pool.busy().values()}

    def wake(self) -> None:
        self.pool.wake()


def api_deps(parts: Components, *, scan: ScanHook | None = None) -> ApiDeps:
    """What the HTTP routes work with, from the service's parts; `scan` answers POST /api/scan."""
    from transcriptarr.api.dependencies import ApiDeps  # aiohttp and prometheus only when serving

    library = parts.library
    if library is None and parts.settings.library_paths:
        # Provider-only mode runs no library; its rules still decide what a webhook queues.
        library = Library(parts.db, parts.queue, LibraryConfig.from_settings(parts.settings), wake=parts.pool.wake)
    return ApiDeps(
        settings=parts.settings,
        db=parts.db,
        queue=parts.queue,
        events=parts.events,
        subtitles=parts.subtitles,
        workers=parts.workers,
        followups=parts.followups.store,
        paths=parts.paths,
        pool=PoolView(parts.pool),
        detect_language=UploadLanguage(parts.models, parts.settings.whisper_model),
        library=library,
        scan=scan,
    )


def _scan_hook(library: Library | None) -> ScanHook | None:
    """`POST /api/scan`: a scan now, answered with what it found and queued."""
    if library is None:
        return None

    async def scan_now() -> dict[str, Any]:
        report = await library.scan()
        return {
            "media_files": report.media_files,
            "unchanged": report.unchanged,
            "probes": report.probes,
            "queued": len(report.queued),
            "cancelled": len(report.cancelled),
            "problems": report.problems,
            "seconds": round(report.seconds, 2),
        }

    return scan_now
