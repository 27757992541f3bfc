"""The `transcriptarr` command.

Every command reads the same configuration as the service and works against
the configured database, also while the service is running. `run` is the whole
service; `worker` only transcribes (no HTTP server, no library discovery), for
more machines on the same PostgreSQL or MariaDB database.
Exit status: 0 ok, 1 the command failed (message on stderr), 2 bad configuration
or usage.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from transcriptarr import __version__
from transcriptarr.db.models import Job, JobState, Source, Task
from transcriptarr.library.commands import add_library_commands
from transcriptarr.library_commands import LIBRARY_HANDLERS
from transcriptarr.policy.confinement import ORIGINAL, Refused, library_file, shown, target_languages
from transcriptarr.queue.jobqueue import InvalidTransition, JobNotFound, JobQueue, NewJob
from transcriptarr.queue.registry import NodeInfo
from transcriptarr.settings import ConfigError, Settings, load_settings
from transcriptarr.startup import StartupError, Storage, open_database, open_storage, reachable


class CommandError(Exception):
    """A failure to report in one line, without a traceback."""


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="transcriptarr", description="Subtitles for a whole media library, with faster-whisper."
    )
    parser.add_argument("--version", action="version", version=f"transcriptarr {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    run = commands.add_parser("run", help="run the service")
    run.add_argument("--once", action="store_true", help="process what is queued, then exit")

    worker = commands.add_parser(
        "worker",
        help="transcribe only: take jobs from the shared database (no HTTP server, no library discovery)",
    )
    worker.add_argument("--once", action="store_true", help="process what is queued, then exit")

    status = commands.add_parser("status", help="queue counts, ETA and workers")
    status.add_argument("--json", action="store_true", help="machine-readable output")

    jobs = commands.add_parser("jobs", help="list jobs, newest first")
    jobs.add_argument("--state", action="append", choices=[s.value for s in JobState], default=[])
    jobs.add_argument("--source", action="append", choices=[s.value for s in Source], default=[])
    jobs.add_argument("--limit", type=int, default=20)
    jobs.add_argument("--json", action="store_true", help="machine-readable output")

    enqueue = commands.add_parser("enqueue", help="queue a media file by hand")
    enqueue.add_argument("path", type=Path)
    enqueue.add_argument("--language", help="target language (default: TARGET_LANGUAGES)")
    enqueue.add_argument("--task", choices=[t.value for t in Task], default=None)
    enqueue.add_argument("--priority", type=int, default=None)

    for name, text in (("cancel", "cancel a job"), ("retry", "queue a failed or cancelled job again")):
        command = commands.add_parser(name, help=text)
        command.add_argument("id", type=int)

    priority = commands.add_parser("priority", help="change a job's priority (higher runs first)")
    priority.add_argument("id", type=int)
    priority.add_argument("priority", type=int)

    db = commands.add_parser("db", help="database maintenance")
    db.add_argument("action", choices=["upgrade", "check"])

    config = commands.add_parser("config", help="configuration")
    config.add_argument("action", choices=["check"])
    add_library_commands(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        settings = load_settings()
    except ConfigError as exc:
        print(f"configuration error: {exc}", file=sys.stderr)
        return 2
    handler = _HANDLERS[args.command if args.command not in ("db", "config") else f"{args.command} {args.action}"]
    try:
        return handler(settings, args)
    except (CommandError, StartupError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


# --- helpers ---
def _with_storage(settings: Settings, work: Callable[[Storage], Awaitable[int]]) -> int:
    """`work` on the configured database, upgraded when behind (StartupError when it does not answer)."""

    async def go() -> int:
        async with open_storage(settings) as storage:
            return await work(storage)

    return asyncio.run(go())


def _with_queue(settings: Settings, work: Callable[[JobQueue], Awaitable[int]]) -> int:
    return _with_storage(settings, lambda storage: work(storage.queue))


def _job_line(job: Job) -> str:
    # repr() for a name stored before names were checked: a terminal never gets raw escape codes.
    where = shown(job.media_path or job.upload_path or "(upload)")
    extra = f"  {job.error}" if job.error and job.state != JobState.COMPLETED else ""
    return (
        f"{job.id:>6}  {job.state:<10} {job.stage:<18} {job.progress:5.1f}%  "
        f"{job.source:<7} p{job.priority:<4} {job.target_language or '-':<5} {where}{extra}"
    )


def job_dict(job: Job) -> dict[str, Any]:
    data: dict[str, Any] = {}
    for column in Job.__table__.columns:
        value = getattr(job, column.key)
        data[column.key] = value.isoformat() if isinstance(value, datetime) else value
    data.pop("result_text", None)
    return data


def _node_line(node: NodeInfo, now: datetime) -> str:
    age = _age((now - node.heartbeat_at).total_seconds())
    where = f"pid {node.pid} on {node.host}" if node.host else "no node record"
    devices = ",".join(node.devices) or "-"
    health = (
        f"heartbeat {age} ago"
        if node.alive
        else f"STALE: no heartbeat for {age}; its jobs go back to the queue when their leases run out"
    )
    workers = f"{len(node.workers)} workers" if node.workers else "no workers"
    return f"{node.name:<20} {node.role or '-':<22} {devices:<12} {workers:<10} {where}, {health}"


def _age(seconds: float) -> str:
    seconds = max(0, int(seconds))
    if seconds < 120:
        return f"{seconds} s"
    if seconds < 7200:
        return f"{seconds // 60} min"
    return f"{seconds // 3600} h"


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "unknown (no finished job measured yet)"
    minutes, secs = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m{secs:02d}s"


# --- commands ---
def _start_service(settings: Settings, *, once: bool) -> int:
    """The service, after the checks that would otherwise fail later and worse (transcriptarr/preflight.py)."""
    from transcriptarr.preflight import preflight  # heavy imports only for `run` and `worker`
    from transcriptarr.service import run_service

    try:
        preflight(settings)
    except ConfigError as exc:
        print(f"configuration error: {exc}", file=sys.stderr)
        return 2
    return asyncio.run(run_service(settings, once=once))


def cmd_run(settings: Settings, args: argparse.Namespace) -> int:
    return _start_service(settings, once=args.once)


def cmd_worker(settings: Settings, args: argparse.Namespace) -> int:
    """`run` without the HTTP server and discovery: a transcription node beside a `run` node."""
    worker_only = settings.model_copy(update={"http_enabled": False, "discovery_enabled": False})
    return _start_service(worker_only, once=args.once)


def cmd_status(settings: Settings, args: argparse.Namespace) -> int:
    async def work(storage: Storage) -> int:
        queue = storage.queue
        nodes = await storage.workers.nodes()
        workers = [worker for node in nodes for worker in node.workers]
        alive = [w for w in workers if w.alive]
        now = datetime.now(UTC)
        stats = await queue.stats(workers=max(1, len(alive)), now=now)
        if args.json:
            payload = {
                "queue": stats.as_dict(),
                "nodes": [node.as_dict(now) for node in nodes],
                "workers": [w.as_dict() for w in workers],
            }
            print(json.dumps(payload, indent=2))
            return 0
        counts = ", ".join(f"{state} {count}" for state, count in stats.counts.items())
        print(f"database: {queue.db.describe()}")
        print(f"jobs: {counts}")
        print(f"last hour: {stats.completed_last_hour} completed, {stats.failed_last_hour} failed")
        speed = f"{stats.speed:.1f}x real time per worker" if stats.speed else "not measured yet"
        print(f"speed: {speed}; queue ETA: {_duration(stats.eta_seconds)}")
        running = len([node for node in nodes if node.alive])
        print(f"nodes: {running} running, {len(nodes) - running} stale")
        for node in nodes:
            print("  " + _node_line(node, now))
            for w in node.workers:
                doing = f"busy: job {w.job_id}" if w.job_id else w.state
                print(f"    {w.id:<40} {w.device:<8} {doing}{'' if w.alive else '  (no heartbeat)'}")
        hint = "" if alive else " (is `transcriptarr run` or `transcriptarr worker` running?)"
        print(f"workers: {len(alive)} alive{hint}")
        return 0

    return _with_storage(settings, work)


def cmd_jobs(settings: Settings, args: argparse.Namespace) -> int:
    async def work(queue: JobQueue) -> int:
        jobs = await queue.list_jobs(states=args.state, sources=args.source, limit=args.limit)
        if args.json:
            print(json.dumps([job_dict(job) for job in jobs], indent=2))
        elif not jobs:
            print("no jobs")
        for job in jobs if not args.json else []:
            print(_job_line(job))
        return 0

    return _with_queue(settings, work)


def cmd_enqueue(settings: Settings, args: argparse.Namespace) -> int:
    """The API's checks (policy/confinement.py): a storable file inside LIBRARY_PATHS, known languages."""
    raw = str(Path(args.path).expanduser().absolute())  # not resolved: symlinks follow the scan's rule
    try:
        media = library_file(raw, settings.library_paths, follow_symlinks=settings.library_follow_symlinks)
        languages = target_languages(args.language, settings.target_languages)
    except Refused as exc:
        raise CommandError(str(exc)) from None

    async def work(queue: JobQueue) -> int:
        for target in languages:
            task = Task(args.task) if args.task else Task.TRANSCRIBE
            result = await queue.enqueue(
                NewJob(
                    source=Source.MANUAL,
                    task=task,
                    media_path=str(media.path),
                    media_size=media.size,
                    media_mtime=media.mtime,
                    target_language=target,
                    priority=args.priority,
                    quality=settings.quality,
                )
            )
            print(f"job {result.job.id}: {result.reason} ({media.path}, {target or ORIGINAL})")
        return 0

    return _with_queue(settings, work)


def _control(settings: Settings, action: Callable[[JobQueue], Awaitable[str]]) -> int:
    async def work(queue: JobQueue) -> int:
        try:
            print(await action(queue))
        except (JobNotFound, InvalidTransition) as exc:
            raise CommandError(str(exc)) from None
        return 0

    return _with_queue(settings, work)


def cmd_cancel(settings: Settings, args: argparse.Namespace) -> int:
    async def action(queue: JobQueue) -> str:
        state = await queue.cancel(args.id, "cancelled from the command line")
        if state == JobState.CANCELLED:
            return f"job {args.id} cancelled"
        return f"job {args.id} is processing; its worker stops at the next checkpoint"

    return _control(settings, action)


def cmd_retry(settings: Settings, args: argparse.Namespace) -> int:
    async def action(queue: JobQueue) -> str:
        job = await queue.retry(args.id)
        return f"job {job.id} queued again"

    return _control(settings, action)


def cmd_priority(settings: Settings, args: argparse.Namespace) -> int:
    async def action(queue: JobQueue) -> str:
        job = await queue.set_priority(args.id, args.priority)
        return f"job {job.id} priority {job.priority}"

    return _control(settings, action)


def cmd_db_upgrade(settings: Settings, args: argparse.Namespace) -> int:
    async def go() -> int:
        async with open_database(settings) as db:
            await reachable(db)
            before, after = await db.upgrade()
        print(f"schema {before or 'empty'} -> {after}" if before != after else f"schema already at {after}")
        return 0

    return asyncio.run(go())


def cmd_db_check(settings: Settings, args: argparse.Namespace) -> int:
    async def go() -> int:
        async with open_database(settings) as db:
            health = await db.health()
        print(json.dumps(health.__dict__, indent=2))
        return 0 if health.ok and health.schema_current else 1

    return asyncio.run(go())


def cmd_config_check(settings: Settings, args: argparse.Namespace) -> int:
    """The effective configuration as an env file; SubGen's variables read, and those ignored, as comments."""
    effective = settings.masked()
    for name, value in effective.items():
        print(f"{name}={value}")
    subgen = settings.subgen.lines(effective)
    if subgen:
        print()
        print("\n".join(f"# {line}" for line in subgen))
    return 0


_HANDLERS: dict[str, Callable[[Settings, argparse.Namespace], int]] = {
    "run": cmd_run,
    "worker": cmd_worker,
    "status": cmd_status,
    "jobs": cmd_jobs,
    "enqueue": cmd_enqueue,
    "cancel": cmd_cancel,
    "retry": cmd_retry,
    "priority": cmd_priority,
    "db upgrade": cmd_db_upgrade,
    "db check": cmd_db_check,
    "config check": cmd_config_check,
    **LIBRARY_HANDLERS,
}
