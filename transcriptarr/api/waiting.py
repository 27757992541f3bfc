"""Waiting for a job while keeping the client's read timeout from firing.

Bazarr's read timeout is per socket read, including the wait for the status
line. While the job runs, an interim `HTTP/1.1 100 Continue` response is
written on the raw transport every few seconds: http.client (requests,
urllib3) skips any number of them and each one restarts its read timeout. The
final response then carries a real status, so a failure is still a 4xx/5xx.
`102 Processing` would not do: http.client takes it as the final response.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
from dataclasses import dataclass

from aiohttp import web

from transcriptarr.db.models import FINISHED_STATES, Job
from transcriptarr.queue.events import Event
from transcriptarr.queue.jobqueue import JobNotFound, JobQueue

CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"


class WaitEnd(enum.Enum):
    FINISHED = "finished"
    TIMED_OUT = "timed_out"
    CLIENT_GONE = "client_gone"
    SHUTTING_DOWN = "shutting_down"
    VANISHED = "vanished"


@dataclass(frozen=True)
class WaitResult:
    end: WaitEnd
    job: Job | None
    keepalives: int


def send_continue(request: web.Request) -> bool:
    """One interim 100 response; False when the client is gone (or speaks HTTP/1.0)."""
    transport = request.transport
    if transport is None or transport.is_closing():
        return False
    if request.version < (1, 1):
        return True  # HTTP/1.0 has no interim responses; such a client just waits
    transport.write(CONTINUE)
    return True


async def wait_for_job(
    request: web.Request,
    queue: JobQueue,
    job_id: int,
    events: asyncio.Queue[Event],
    *,
    keepalive_seconds: float,
    poll_seconds: float,
    max_wait_seconds: float,
    shutting_down: asyncio.Event,
) -> WaitResult:
    """Until the job has finished for good (a retry is not the end), with keepalives meanwhile.

    Finishing is learnt from this node's `job_finished` events, and from the
    database every `poll_seconds` (another node may do the work, and events
    can be dropped by a slow subscriber).
    """
    loop = asyncio.get_running_loop()
    deadline = loop.time() + max_wait_seconds
    next_keepalive = loop.time() + keepalive_seconds
    next_poll = loop.time()
    sent = 0
    while True:
        now = loop.time()
        if now >= next_poll:
            try:
                job = await queue.get(job_id)
            except JobNotFound:
                return WaitResult(WaitEnd.VANISHED, None, sent)
            if job.state in FINISHED_STATES:
                return WaitResult(WaitEnd.FINISHED, job, sent)
            next_poll = loop.time() + poll_seconds
        if shutting_down.is_set():
            return WaitResult(WaitEnd.SHUTTING_DOWN, None, sent)
        now = loop.time()
        if now >= deadline:
            return WaitResult(WaitEnd.TIMED_OUT, None, sent)
        if now >= next_keepalive:
            if not send_continue(request):
                return WaitResult(WaitEnd.CLIENT_GONE, None, sent)
            sent += 1
            next_keepalive = now + keepalive_seconds
        timeout = max(0.0, min(next_keepalive, next_poll, deadline) - loop.time())
        event = await next_event(events, shutting_down, timeout)
        if event is not None and event.get("event") == "job_finished" and event.get("job_id") == job_id:
            next_poll = loop.time()  # read the final state from the database now


async def next_event(events: asyncio.Queue[Event], stop: asyncio.Event, wait_seconds: float) -> Event | None:
    getter = asyncio.ensure_future(events.get())
    stopper = asyncio.ensure_future(stop.wait())
    try:
        done, _ = await asyncio.wait({getter, stopper}, timeout=wait_seconds, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for waiting in (getter, stopper):
            if not waiting.done():
                waiting.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await waiting
    if getter in done and not getter.cancelled():
        return getter.result()
    return None
