"""Prometheus metrics: one registry per app (no global state), refreshed from the database at scrape.

Counters (media seconds, processing seconds, finished jobs, failures) count
what this node's workers did since it started, learnt from job events; gauges
(jobs by state, queue length, ETA) are read from the shared database at each
scrape, so every node reports the same queue.
"""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING

import structlog
from aiohttp import web
from aiohttp.typedefs import Handler, Middleware
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, Info, generate_latest

from transcriptarr import __version__
from transcriptarr.db.models import Job, JobState, Source

if TYPE_CHECKING:
    from transcriptarr.api.dependencies import ApiDeps

log = structlog.get_logger(__name__)

_LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 60.0, 600.0)
_INTAKE_BUCKETS = (0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 3.0, 5.0, 10.0, 30.0)


class ApiMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.requests = Counter(
            "transcriptarr_http_requests", "HTTP requests answered.", ["method", "route", "status"], registry=r
        )
        self.latency = Histogram(
            "transcriptarr_http_request_duration_seconds",
            "Time to answer an HTTP request (Bazarr requests include the transcription).",
            ["method", "route"],
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.jobs = Gauge("transcriptarr_jobs", "Jobs in the database, by state.", ["state"], registry=r)
        self.queue_length = Gauge("transcriptarr_queue_length", "Jobs waiting for a worker.", registry=r)
        self.queue_eta = Gauge(
            "transcriptarr_queue_eta_seconds", "Estimated time to empty the queue (-1: unknown).", registry=r
        )
        self.workers = Gauge("transcriptarr_workers", "Transcription workers of this node.", registry=r)
        self.workers_busy = Gauge("transcriptarr_workers_busy", "Workers of this node running a job.", registry=r)
        self.media_seconds = Counter(
            "transcriptarr_processed_media_seconds", "Seconds of media transcribed by this node.", registry=r
        )
        self.processing_seconds = Counter(
            "transcriptarr_processing_seconds", "Seconds this node's workers spent on jobs.", registry=r
        )
        self.finished = Counter(
            "transcriptarr_jobs_finished", "Jobs this node finished, by outcome.", ["state", "source"], registry=r
        )
        self.failures = Counter(
            "transcriptarr_job_failures", "Jobs this node gave up on (failed for good).", ["source"], registry=r
        )
        for source in Source:  # every series exists from the start, at zero
            self.failures.labels(source=source.value)
        self.uploads = Counter("transcriptarr_uploads", "Provider uploads received.", registry=r)
        self.upload_bytes = Counter("transcriptarr_upload_bytes", "Bytes of provider uploads received.", registry=r)
        self.upload_intake = Histogram(
            "transcriptarr_upload_intake_seconds",
            "Time to receive a whole provider upload.",
            buckets=_INTAKE_BUCKETS,
            registry=r,
        )
        Info("transcriptarr_build", "Version of this service.", registry=r).info({"version": __version__})

    def upload_received(self, size: int, seconds: float) -> None:
        self.uploads.inc()
        self.upload_bytes.inc(size)
        self.upload_intake.observe(seconds)

    def job_finished(self, job: Job) -> None:
        self.finished.labels(state=job.state, source=job.source).inc()
        if job.processing_seconds:
            self.processing_seconds.inc(job.processing_seconds)
        if job.state == JobState.COMPLETED and job.media_duration:
            self.media_seconds.inc(job.media_duration)
        if job.state == JobState.FAILED:
            self.failures.labels(source=job.source).inc()

    async def scrape(self, deps: ApiDeps) -> bytes:
        """Fresh gauges from the database and the pool, then the text exposition."""
        alive = sum(1 for worker in await deps.workers.list() if worker.alive)
        stats = await deps.queue.stats(workers=alive)
        for state, count in stats.counts.items():
            self.jobs.labels(state=state).set(count)
        self.queue_length.set(stats.counts.get(JobState.QUEUED, 0))
        self.queue_eta.set(-1 if stats.eta_seconds is None else stats.eta_seconds)
        self.workers.set(deps.pool.size())
        self.workers_busy.set(len(deps.pool.running()))
        return generate_latest(self.registry)

    async def follow_jobs(self, deps: ApiDeps) -> None:
        """Count every job this node's workers finish (runs until cancelled)."""
        async with deps.events.subscribe() as events:
            while True:
                event = await events.get()
                if event.get("event") != "job_finished":
                    continue
                try:
                    job = await deps.queue.get(int(event["job_id"]))
                except asyncio.CancelledError:
                    raise
                except Exception as exc:  # gone or database away: a lost count, not a crash
                    log.warning("metrics_job_lookup_failed", job_id=event.get("job_id"), error=str(exc))
                    continue
                if job.state in (JobState.COMPLETED, JobState.FAILED, JobState.CANCELLED):
                    self.job_finished(job)

    def middleware(self) -> Middleware:
        @web.middleware
        async def count_requests(request: web.Request, handler: Handler) -> web.StreamResponse:
            started = time.perf_counter()
            status = 500
            try:
                response = await handler(request)
                status = response.status
                return response
            except web.HTTPException as exc:
                status = exc.status
                raise
            finally:
                resource = request.match_info.route.resource
                route = resource.canonical if resource is not None else "unmatched"
                seconds = time.perf_counter() - started
                self.requests.labels(request.method, route, str(status)).inc()
                self.latency.labels(request.method, route).observe(seconds)
                # aiohttp's access log is off; this is the access log, at debug level.
                log.debug("http_request", method=request.method, path=request.path, status=status, ms=seconds * 1000)

        return count_requests
