"""The worker pool: claim, run, report, finish; stop cleanly on request.

Each worker is a coroutine that claims one job at a time. While a job runs, a
heartbeat renews its lease and writes its progress (about once a second, never
per segment) and learns whether someone asked to cancel it. Status writes after
a job are shielded, so a shutdown cannot lose them.

Shutdown: `stop` is set -> no more claims; running jobs get `grace_seconds` to
finish (`hurry`, a second SIGTERM/SIGINT, ends the grace at once), then are
cancelled and handed back to the queue without counting the attempt. Each write
of the stop after that (the hand-back, the worker rows) gets HAND_BACK_SECONDS to
answer, and none is waited for once one went unanswered: a database that hangs
must not hold the stop up, and what was not stored is recovered at the next start
(the node requeues its jobs) or when the lease runs out.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import time
import weakref
from collections.abc import Awaitable, Callable, Collection
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import structlog

from transcriptarr.db.models import FINISHED_STATES, Job, JobState, Stage
from transcriptarr.db.outage import log_failure, until_written
from transcriptarr.queue.events import JobEvents
from transcriptarr.queue.followups import FollowUpPlanner
from transcriptarr.queue.jobqueue import JobQueue
from transcriptarr.queue.leftovers import remove_job_work_files
from transcriptarr.queue.registry import WorkerRegistry
from transcriptarr.workers.job_runner import JobCancelled, JobContext, JobFailure, Outcome
from transcriptarr.workers.shortage import service_shortage, shortage_reason

log = structlog.get_logger(__name__)
T = TypeVar("T")

Runner = Callable[[JobContext, str], Awaitable[Outcome]]


@dataclass
class PoolSummary:
    completed: int = 0
    skipped: int = 0
    failed: int = 0
    retrying: int = 0
    cancelled: int = 0
    released: int = 0


@dataclass(frozen=True)
class PoolConfig:
    node: str
    devices: tuple[str, ...] = ("cpu",)
    workers_per_device: int = 1
    poll_seconds: float = 2.0
    heartbeat_seconds: float = 1.0
    grace_seconds: float = 30.0
    max_job_seconds: float = 4 * 3600.0
    progress_log_seconds: float = 60.0  # a `job_progress` line this often while a job runs; 0: never
    work_dir: Path | None = None  # jobs' work files (checkpoints): removed once a job has ended for good


@dataclass
class _Running:
    ctx: JobContext
    task: asyncio.Task[Outcome]
    worker: str
    lost: bool = False
    handed_back: bool | None = None  # hurried: released before its runner stopped (True: recorded)
    started: float = field(default_factory=time.monotonic)
    extra: dict[str, Any] = field(default_factory=dict)


class WorkerPool:
    def __init__(
        self,
        queue: JobQueue,
        registry: WorkerRegistry,
        runner: Runner,
        config: PoolConfig,
        events: JobEvents | None = None,
        after_job: Callable[[Job], None] | None = None,
        followups: FollowUpPlanner | None = None,
    ) -> None:
        self.queue = queue
        self.after_job = after_job  # told of each job that completed or finally failed; must not block
        self.followups = followups  # stored with each result, in its transaction (integrations/followups.py)
        self.events = events or JobEvents()
        self.registry = registry
        self.runner = runner
        self.config = config
        self.summary = PoolSummary()
        self._wakeup = asyncio.Event()
        self._wakes = 0  # how many times `wake` was called
        self._wakes_seen: weakref.WeakKeyDictionary[asyncio.Task[Any], int] = weakref.WeakKeyDictionary()
        self._running: dict[str, _Running] = {}
        self._hurry = asyncio.Event()
        self._handing_back = False  # the grace is over: the stop's writes are bounded
        self._unanswered = False  # one of them got no answer: the database hangs, the others are not waited for

    def hurry(self) -> None:
        """Stop waiting for running jobs: hand them back now (a second SIGTERM/SIGINT)."""
        self._hurry.set()

    def wake(self) -> None:
        """A job was queued: idle workers look now instead of at their next poll."""
        self._wakes += 1
        self._wakeup.set()

    def busy(self) -> dict[str, JobContext]:
        return {worker: running.ctx for worker, running in self._running.items()}

    def workers(self) -> list[tuple[str, str]]:
        """(worker id, device) of every worker this pool runs."""
        return [
            (f"{self.config.node}/{device}/{n}", device)
            for device in self.config.devices
            for n in range(self.config.workers_per_device)
        ]

    async def run(self, stop: asyncio.Event, *, once: bool = False) -> PoolSummary:
        """Run every worker until `stop` is set (or, with `once`, until nothing is left to do)."""
        workers = [
            asyncio.create_task(self._worker(worker_id, device, stop, once), name=worker_id)
            for worker_id, device in self.workers()
        ]
        # asyncio.wait, never gather: a gather whose workers were cancelled at the end of the grace
        # holds a CancelledError nobody reads ("_GatheringFuture exception was never retrieved").
        finished: asyncio.Future[Any] = (
            asyncio.ensure_future(asyncio.wait(workers, return_when=asyncio.FIRST_EXCEPTION)) if workers else _done()
        )
        stopping: asyncio.Future[Any] = asyncio.ensure_future(stop.wait())
        try:
            await asyncio.wait({finished, stopping}, return_when=asyncio.FIRST_COMPLETED)
            if not finished.done():
                log.info("workers_stopping", running=len(self._running), grace_seconds=self.config.grace_seconds)
                late = await self._grace(workers)
                self._handing_back = True
                if self._hurry.is_set():
                    await self._hand_back_now()
                await _cancel_all(late)  # past the grace: running jobs are handed back
        except asyncio.CancelledError:  # run() itself cancelled: hand the running jobs back too
            self._handing_back = True
            await _cancel_all(workers)
            raise
        finally:
            stopping.cancel()
            finished.cancel()
        failures = [
            (task, exc) for task in workers if task.done() and not task.cancelled() and (exc := task.exception())
        ]
        if failures and not stop.is_set():  # a worker died of a bug: the others hand their jobs back, then it is raised
            await _cancel_all(workers)
            raise failures[0][1]
        for task, exc in failures:
            log.error("worker_crashed", worker=task.get_name(), error=f"{type(exc).__name__}: {exc}")
        return self.summary

    async def _grace(self, workers: list[asyncio.Task[None]]) -> set[asyncio.Task[None]]:
        """Wait up to `grace_seconds` for the workers to end (less if hurried); those still running."""
        all_ended = asyncio.ensure_future(asyncio.wait(workers))
        hurried = asyncio.ensure_future(self._hurry.wait())
        try:
            grace = self.config.grace_seconds
            await asyncio.wait({all_ended, hurried}, timeout=grace, return_when=asyncio.FIRST_COMPLETED)
        finally:
            all_ended.cancel()
            hurried.cancel()
        if self._hurry.is_set():
            log.info("workers_hurried", running=len(self._running))
        return {task for task in workers if not task.done()}

    async def _hand_back_now(self) -> None:
        """Hurried: hand the running jobs back first; their runners may still take a segment to stop.

        (Without a hurry each runner stops, storing its checkpoint, before its job is released.)"""

        async def release(running: _Running) -> None:
            job = running.ctx.job
            write = functools.partial(self.queue.release, job.id, running.worker)
            running.handed_back = await self._settle(write, "released", job, patient=False)

        await asyncio.gather(*(release(running) for running in list(self._running.values())), return_exceptions=True)

    async def _stopping_bounded(self, call: Awaitable[T]) -> T | None:
        """`call`, shielded from the stop; past the grace, None if it has not answered within
        HAND_BACK_SECONDS (at once, once a call of the stop went unanswered: the database hangs).

        (The call goes on by itself: a hung database may answer before the process exits.)"""
        task = asyncio.ensure_future(call)
        if not self._handing_back:
            return await asyncio.shield(task)
        done, _ = await asyncio.wait({task}, timeout=0 if self._unanswered else HAND_BACK_SECONDS)
        if not done:
            self._unanswered = True
            task.add_done_callback(_retrieve)
            return None
        return task.result()

    async def _worker(self, worker_id: str, device: str, stop: asyncio.Event, once: bool) -> None:
        await self.registry.register(worker_id, self.config.node, device)
        try:
            while not stop.is_set():
                try:
                    jobs = await self.queue.claim(worker_id, self.config.node)
                except Exception as exc:  # the database is away: keep the worker, try again
                    log_failure(log, "claim_failed", exc, worker=worker_id)
                    await self._idle(stop)
                    continue
                if jobs:
                    await self._process(worker_id, device, jobs[0])
                    continue
                if once and await self._nothing_left():
                    return
                await self._beat(worker_id, "idle", None)
                await self._idle(stop)
        finally:
            with contextlib.suppress(Exception):
                await self._stopping_bounded(self.registry.unregister(worker_id))

    async def _nothing_left(self) -> bool:
        queued = await self.queue.list_jobs(states=[JobState.QUEUED, JobState.PROCESSING], limit=1)
        return not queued and not self._running

    async def _idle(self, stop: asyncio.Event) -> None:
        """Wait for a wake-up, `stop` or the next poll; return at once if woken since this worker last looked.

        (A wake-up that came while this worker was claiming may be for a job its claim missed.)"""
        me = asyncio.current_task()
        assert me is not None
        if self._wakes_seen.get(me, 0) != self._wakes:
            self._wakes_seen[me] = self._wakes
            return
        self._wakeup.clear()  # waiting workers were woken by the last set(); pending wake-ups are counted
        try:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.config.poll_seconds):
                    waits = [asyncio.ensure_future(stop.wait()), asyncio.ensure_future(self._wakeup.wait())]
                    try:
                        await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
                    finally:
                        for waiting in waits:
                            waiting.cancel()
        finally:
            self._wakes_seen[me] = self._wakes

    async def _beat(self, worker_id: str, state: str, job_id: int | None) -> None:
        with contextlib.suppress(Exception):
            await self._stopping_bounded(self.registry.beat(worker_id, state, job_id))

    # --- one job ---
    async def _process(self, worker_id: str, device: str, job: Job) -> None:
        # Every line logged about this job (here, in its task and threads, by its heartbeat) carries
        # its id, file and stage; JobContext.enter re-binds the stage as the job moves on.
        with structlog.contextvars.bound_contextvars(job_id=job.id, path=job.media_path, stage=Stage.PENDING.value):
            await self._run_job(worker_id, device, job)

    async def _run_job(self, worker_id: str, device: str, job: Job) -> None:
        ctx = JobContext(job)
        log.info("job_started", job_id=job.id, path=job.media_path, worker=worker_id, attempt=job.attempts)
        task = asyncio.create_task(self._bounded(self.runner(ctx, device)))
        running = _Running(ctx, task, worker_id)
        self._running[worker_id] = running
        heartbeat = asyncio.create_task(self._heartbeat(running))
        try:
            # Inside the try: a stop that comes while the row says "busy" still hands the job back.
            await self._beat(worker_id, "busy", job.id)
            self.events.publish("job_started", job_id=job.id, worker=worker_id, path=job.media_path)
            outcome = await self._outcome(running)
        except asyncio.CancelledError:
            me = asyncio.current_task()
            if me is not None and me.cancelling():
                # The pool is shutting down past its grace period: hand the job back (if not already done),
                # once its runner has stopped (it stores its checkpoint first).
                task.cancel()
                await asyncio.wait({task})
                ok = running.handed_back
                if ok is None:
                    ok = await self._settle(
                        lambda: self.queue.release(job.id, worker_id), "released", job, patient=False
                    )
                self._log_finished(running, device, "released", recorded=ok)
                raise
            if running.lost:
                return  # another worker owns it now; nothing of ours to record
            ok = await self._settle(lambda: self.queue.acknowledge_cancel(job.id, worker_id), "cancelled", job)
            self._log_finished(running, device, "cancelled", recorded=ok)
        except JobCancelled:
            ok = await self._settle(lambda: self.queue.acknowledge_cancel(job.id, worker_id), "cancelled", job)
            self._log_finished(running, device, "cancelled", recorded=ok)
        except JobFailure as failure:
            shortage = service_shortage(failure)  # EMFILE running ffprobe: retried, the attempt not counted
            await self._failed(
                running, device, str(failure), permanent=failure.permanent, shortage=shortage, counted=failure.counted
            )
        except TimeoutError:
            reason = f"took longer than the maximum of {self.config.max_job_seconds / 60:g} minutes (MAX_JOB_MINUTES)"
            await self._failed(running, device, reason, permanent=True)
        except Exception as exc:  # a bug or an unforeseen library error: retry, and say what it was
            log.exception("job_crashed", job_id=job.id, path=job.media_path)
            reason = f"unexpected error: {type(exc).__name__}: {exc}"
            await self._failed(running, device, reason, permanent=False, shortage=service_shortage(exc))
        else:
            await self._completed(running, device, outcome)
        finally:
            heartbeat.cancel()
            with contextlib.suppress(BaseException):
                await heartbeat
            self._running.pop(worker_id, None)
            await self._finished(job)
            await self._beat(worker_id, "idle", None)

    async def _finished(self, job: Job) -> None:
        """Tell listeners; drop the spooled upload and the work files once the job has ended for good."""
        with contextlib.suppress(Exception):
            current = await self._stopping_bounded(self.queue.get(job.id))
            if current is None:  # stopping, and the database does not answer: nothing more to do here
                return
            self.events.publish("job_finished", job_id=job.id, state=current.state, error=current.error)
            if self.after_job is not None and current.state in (JobState.COMPLETED, JobState.FAILED):
                self.after_job(current)
            if job.upload_path and current.state in FINISHED_STATES:
                await asyncio.to_thread(Path(job.upload_path).unlink, missing_ok=True)
            if self.config.work_dir is not None and current.state in FINISHED_STATES:
                # A checkpoint outlives the attempt only while another attempt may need it.
                await asyncio.to_thread(remove_job_work_files, self.config.work_dir, job.id)

    async def _bounded(self, work: Awaitable[Outcome]) -> Outcome:
        async with asyncio.timeout(self.config.max_job_seconds):
            return await work

    async def _outcome(self, running: _Running) -> Outcome:
        """Wait for the job; the lines logged after it carry the stage it reached."""
        try:
            return await running.task
        finally:
            structlog.contextvars.bind_contextvars(stage=running.ctx.stage.value)

    async def _completed(self, running: _Running, device: str, outcome: Outcome) -> None:
        job, seconds = running.ctx.job, time.monotonic() - running.started
        fields = {k: v for k, v in outcome.fields.items() if k in _JOB_COLUMNS}
        result = "skipped" if outcome.skipped else "completed"
        ok = await self._settle(
            lambda: self.queue.complete(
                job.id,
                running.worker,
                result_path=outcome.result_path,
                result_text=outcome.result_text,
                processing_seconds=round(seconds, 3),
                followups=self.followups,
                **fields,
            ),
            result,
            job,
        )
        self._log_finished(running, device, result, outcome=outcome, recorded=ok)

    async def _failed(
        self,
        running: _Running,
        device: str,
        reason: str,
        *,
        permanent: bool,
        shortage: OSError | None = None,
        counted: bool = True,
    ) -> None:
        ctx, job = running.ctx, running.ctx.job
        if shortage is not None:  # the service's own shortage (workers/shortage.py): not the job's attempt
            reason, permanent = shortage_reason(reason, shortage), False
        fields = {k: v for k, v in ctx.fields.items() if k in _JOB_COLUMNS}
        state = await asyncio.shield(
            until_written(
                lambda: self.queue.fail(
                    job.id,
                    running.worker,
                    reason,
                    permanent=permanent,
                    followups=self.followups,
                    counted=counted and shortage is None,
                    **fields,
                ),
                what="job failure",
                job_id=job.id,
            )
        )
        if state == JobState.FAILED:
            self.summary.failed += 1
        elif state == JobState.QUEUED:
            self.summary.retrying += 1
        log.warning(
            "job_failed",
            job_id=job.id,
            path=job.media_path,
            stage=ctx.stage.value,
            error=reason,
            permanent=permanent,
            next_state=state,
        )
        result = "retrying" if state == JobState.QUEUED else "failed"
        self._log_finished(running, device, result, error=reason, recorded=state is not None)

    def _log_finished(
        self,
        running: _Running,
        device: str,
        result: str,
        *,
        outcome: Outcome | None = None,
        error: str | None = None,
        recorded: bool = True,
    ) -> None:
        """The one summary line of each job that ended on this worker, whatever the end (docs/logging.md)."""
        ctx, job = running.ctx, running.ctx.job
        fields = {**ctx.fields, **(outcome.fields if outcome else {})}
        seconds = time.monotonic() - running.started
        duration = fields.get("media_duration")
        summary = dict(
            job_id=job.id,
            path=job.media_path,
            stage=ctx.stage.value,
            source=job.source,
            result=result,
            reason=outcome.skipped if outcome else None,
            error=error,
            subtitle=outcome.result_path if outcome else None,
            media_seconds=round(duration, 2) if duration else duration,
            processing_seconds=round(seconds, 2),
            rtf=round(seconds / duration, 3) if duration else None,
            language=fields.get("source_language", job.source_language),
            target_language=fields.get("target_language", job.target_language),
            task=fields.get("task", job.task),
            model=fields.get("model"),
            device=fields.get("device", device),
            worker=running.worker,
            attempt=job.attempts,
            recorded=recorded,
        )
        if result in ("failed", "retrying"):
            log.warning("job_finished", **summary)
        else:
            log.info("job_finished", **summary)

    async def _settle(self, write: Callable[[], Awaitable[bool]], kind: str, job: Job, *, patient: bool = True) -> bool:
        """A status write that a shutdown must not interrupt; `patient`: it waits out a database outage.

        (Not a release at shutdown: that must not hold the shutdown up; start-up recovery requeues the job.)"""
        if patient:
            ok = await asyncio.shield(until_written(write, what=f"job {kind}", job_id=job.id))
        else:
            released = await self._stopping_bounded(write())
            if released is None:
                log.warning(
                    "job_hand_back_abandoned",
                    job_id=job.id,
                    path=job.media_path,
                    seconds=HAND_BACK_SECONDS,
                    reason="the database did not answer in time; the job goes back to the queue when this node "
                    "starts again, or when its lease runs out",
                )
                return False
            ok = released
        setattr(self.summary, kind, getattr(self.summary, kind) + 1)
        if not ok:
            log.warning("job_lost_lease", job_id=job.id, path=job.media_path, outcome=kind)
        return ok

    async def _heartbeat(self, running: _Running) -> None:
        """Renew the lease, write progress about once a second, notice cancel requests."""
        ctx, job = running.ctx, running.ctx.job
        written: tuple[float, str, int] | None = None
        last_write = 0.0
        # Also the longest a cancel request waits to be seen while progress stands still (a slow first window).
        renew_every = min(self.queue.lease.total_seconds() / 3, _CANCEL_CHECK_SECONDS)
        every = self.config.progress_log_seconds
        next_progress_line = running.started + every
        while True:
            await asyncio.sleep(self.config.heartbeat_seconds)
            structlog.contextvars.bind_contextvars(stage=ctx.stage.value)  # this task's lines: the current stage
            if every > 0 and time.monotonic() >= next_progress_line:
                next_progress_line = time.monotonic() + every
                _log_progress(ctx, running.started)
            state = (ctx.progress, ctx.stage.value, len(ctx.fields))
            if state == written and time.monotonic() - last_write < renew_every:
                continue
            try:
                status = await self.queue.report(
                    job.id,
                    running.worker,
                    progress=ctx.progress,
                    stage=ctx.stage,
                    **{k: v for k, v in ctx.fields.items() if k in _JOB_COLUMNS},
                )
            except Exception as exc:  # database briefly away: the lease has slack for this
                log_failure(log, "heartbeat_failed", exc, job_id=job.id)
                continue
            written, last_write = state, time.monotonic()
            self.events.publish("job_progress", job_id=job.id, stage=ctx.stage.value, progress=ctx.progress)
            if not status.owned:
                log.warning("job_lease_lost", job_id=job.id, path=job.media_path)
                running.lost = True
                running.task.cancel()
                return
            if status.cancel_requested and not ctx.cancelled.is_set():
                log.info("job_cancel_requested", job_id=job.id, path=job.media_path)
                ctx.cancelled.set()
                running.task.cancel()


async def _cancel_all(tasks: Collection[asyncio.Task[Any]]) -> None:
    """Cancel these tasks and wait until each has ended (their exceptions are read by the caller)."""
    for task in tasks:
        task.cancel()
    if pending := [task for task in tasks if not task.done()]:
        await asyncio.wait(pending)


def _retrieve(task: asyncio.Future[Any]) -> None:
    """Read the outcome of a call nobody awaits any more (else asyncio reports it as never retrieved)."""
    if not task.cancelled():
        task.exception()


def _done() -> asyncio.Future[Any]:
    """An already finished future (a pool without workers)."""
    future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
    future.set_result(None)
    return future


def _log_progress(ctx: JobContext, started: float) -> None:
    """How far a running job is, how fast it goes (once transcribing) and when it should be done."""
    now = time.monotonic()
    duration = ctx.fields.get("media_duration")
    speed_x = rtf = eta = None
    spent = now - ctx.stage_started
    if duration and ctx.progress > 0 and spent > 0 and ctx.stage in (Stage.TRANSCRIBING, Stage.TRANSLATING):
        media_done = duration * ctx.progress / 100
        speed_x, rtf = media_done / spent, spent / media_done
        eta = (duration - media_done) / speed_x
    log.info(
        "job_progress",
        job_id=ctx.job.id,
        path=ctx.job.media_path,
        stage=ctx.stage.value,
        pct=ctx.progress,
        elapsed_seconds=round(now - started, 1),
        media_seconds=round(duration, 2) if duration else None,
        speed_x=round(speed_x, 2) if speed_x is not None else None,
        rtf=round(rtf, 3) if rtf is not None else None,
        eta_seconds=round(eta) if eta is not None else None,
    )


_CANCEL_CHECK_SECONDS = 2.0
# After the grace, each database write of the stop (hand-backs, worker rows) gets this long to answer.
HAND_BACK_SECONDS = 3.0
_JOB_COLUMNS = frozenset(
    {"media_duration", "details", "source_language", "language_probability", "task", "target_language"}
)
