"""Upload intake: the multipart part `audio_file` streamed to the spool at full speed.

Bazarr sends the whole audio track as one `sendall` under its 5 s "response
timeout", so the body is read the moment it arrives, whatever the workers are
doing. `request.multipart()` reads the stream directly, so aiohttp's
`client_max_size` (1 MiB) does not apply; our own limit does. Hashing and disk
writes run in threads of their own, 4 MiB at a time, while the event loop goes
on reading the socket. Whatever goes wrong, no partial file is left behind.

A file being received is named `upload-<uuid>.part` and written to at least every
30 s while data comes, so the sweep of leftovers (queue/leftovers.py) tells it from
one a killed process left behind.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import functools
import hashlib
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import structlog
from aiohttp import BodyPartReader, web

from transcriptarr.api.errors import ApiError
from transcriptarr.queue.leftovers import PARTIAL_SUFFIX, TOUCH_SECONDS, UPLOAD_PREFIX, new_upload_file, partial_file

log = structlog.get_logger(__name__)

AUDIO_FIELD = "audio_file"
_READ_SIZE = 1 << 20
_FLUSH_SIZE = 4 << 20
_IN_FLIGHT = 4
# Multipart framing around the audio: boundaries, part headers, other small fields.
_FRAMING_SLACK = 1 << 20
# Errors of the spool's disk (not of the connection, which raises OSErrors too).
_SPOOL_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EPERM, errno.EIO})


@dataclass(frozen=True)
class Upload:
    path: Path | None  # the spooled file; None when the body was only drained
    size: int
    sha256: str | None
    head: bytes  # the first `keep_head` bytes
    seconds: float  # time from the first read to the last byte on disk


class _Sink:
    """Hash and write blocks in order, off the event loop.

    Hashing and writing each get a thread of their own (both release the GIL),
    so they overlap with each other and with the socket reads; at most
    `_IN_FLIGHT` blocks wait for them, which bounds memory per upload.
    """

    def __init__(self, handle: IO[bytes] | None, hashing: bool, keep_head: int) -> None:
        self._handle = handle
        self._hash = hashlib.sha256() if hashing else None
        self._keep_head = keep_head
        self.head = bytearray()
        self.size = 0
        self._buffer: list[bytes] = []
        self._buffered = 0
        self._flushed = time.monotonic()
        steps: list[Callable[[bytes], object]] = []
        if self._hash is not None:
            steps.append(self._hash.update)
        if handle is not None:
            steps.append(functools.partial(_write_through, handle))
        self._lanes = [(ThreadPoolExecutor(1, thread_name_prefix="upload"), step) for step in steps]
        self._in_flight: deque[list[asyncio.Future[object]]] = deque()

    async def feed(self, data: bytes) -> None:
        self.size += len(data)
        if len(self.head) < self._keep_head:
            self.head += data[: self._keep_head - len(self.head)]
        if not self._lanes:
            return
        self._buffer.append(data)
        self._buffered += len(data)
        # Also now and then while a slow client trickles: the file's mtime says the upload is alive.
        if self._buffered >= _FLUSH_SIZE or time.monotonic() - self._flushed >= TOUCH_SECONDS:
            await self._flush()

    async def _flush(self) -> None:
        if not self._buffer:
            return
        block = b"".join(self._buffer)
        self._buffer, self._buffered, self._flushed = [], 0, time.monotonic()
        loop = asyncio.get_running_loop()
        self._in_flight.append([loop.run_in_executor(lane, step, block) for lane, step in self._lanes])
        while len(self._in_flight) > _IN_FLIGHT:
            await asyncio.gather(*self._in_flight.popleft())

    async def finish(self) -> str | None:
        await self._flush()
        while self._in_flight:
            await asyncio.gather(*self._in_flight.popleft())
        if self._handle is not None:
            await asyncio.to_thread(self._handle.flush)
        self._close_lanes()
        return self._hash.hexdigest() if self._hash is not None else None

    async def abandon(self) -> None:
        while self._in_flight:
            await asyncio.gather(*self._in_flight.popleft(), return_exceptions=True)
        self._close_lanes()

    def _close_lanes(self) -> None:
        for lane, _ in self._lanes:
            lane.shutdown(wait=False)


async def receive_upload(
    request: web.Request,
    *,
    spool_dir: Path | None,
    max_bytes: int | None,
    keep_head: int = 0,
    hashing: bool = True,
    idle_seconds: float = 60.0,
) -> Upload:
    """Read the `audio_file` part: to a new file in `spool_dir` (or nowhere), hashed.

    Raises ApiError (4xx) for a missing or oversized part and a malformed,
    stalled or cut-off body; the partial file is removed first.
    """
    declared = request.content_length
    if max_bytes is not None and declared is not None and declared > max_bytes + _FRAMING_SLACK:
        raise ApiError(413, _too_large(max_bytes, declared))
    try:
        reader = await request.multipart()
    except (AssertionError, KeyError, ValueError):
        raise ApiError(400, f"the body must be multipart/form-data with an {AUDIO_FIELD!r} part") from None

    final: Path | None = None
    partial: Path | None = None
    handle: IO[bytes] | None = None
    if spool_dir is not None:
        final = new_upload_file(spool_dir)
        partial = partial_file(final)
        try:
            handle = await asyncio.to_thread(_open_spool, partial)
        except OSError as exc:
            raise _spool_failed(spool_dir, exc) from None
    sink = _Sink(handle, hashing, keep_head)
    started = time.monotonic()
    try:
        async with asyncio.timeout(idle_seconds) as idle:
            found = False
            while (part := await reader.next()) is not None:
                if not isinstance(part, BodyPartReader) or part.name != AUDIO_FIELD or found:
                    await part.release()  # another field, or a nested multipart: not ours
                    continue
                found = True
                while chunk := await part.read_chunk(_READ_SIZE):
                    idle.reschedule(asyncio.get_running_loop().time() + idle_seconds)
                    await sink.feed(chunk)
                    if max_bytes is not None and sink.size > max_bytes:
                        raise ApiError(413, _too_large(max_bytes, declared))
        if not found:
            raise ApiError(400, f"no {AUDIO_FIELD!r} part in the multipart body; send the audio as {AUDIO_FIELD!r}")
        digest = await sink.finish()
        if handle is not None:
            await asyncio.to_thread(handle.close)
            handle = None
        if partial is not None and final is not None:
            await asyncio.to_thread(partial.replace, final)
        seconds = time.monotonic() - started
    except BaseException as exc:
        await sink.abandon()
        if handle is not None:
            await asyncio.to_thread(handle.close)
        if partial is not None:
            await asyncio.to_thread(partial.unlink, missing_ok=True)
        if isinstance(exc, ApiError):
            raise
        if isinstance(exc, TimeoutError):
            raise ApiError(408, f"the upload stalled: no data for {idle_seconds:g} s") from None
        if isinstance(exc, OSError) and exc.errno in _SPOOL_ERRNOS and spool_dir is not None:
            raise _spool_failed(spool_dir, exc) from None
        if isinstance(exc, Exception):
            if request.transport is None or request.transport.is_closing():
                raise ApiError(400, "the client closed the connection during the upload") from None
            raise ApiError(400, f"malformed multipart body: {exc}") from None
        raise
    return Upload(final, sink.size, digest, bytes(sink.head), seconds)


def _write_through(handle: IO[bytes], block: bytes) -> None:
    handle.write(block)
    handle.flush()  # a small block too reaches the file (and its mtime) now


def _open_spool(path: Path) -> IO[bytes]:
    path.parent.mkdir(parents=True, exist_ok=True)
    return path.open("xb")


def _spool_failed(spool_dir: Path, exc: OSError) -> ApiError:
    """A full or read-only DATA_DIR is this server's problem, not a bad request: 503, saying what to fix."""
    log.error("spool_write_failed", folder=str(spool_dir), error=exc.strerror or str(exc), errno=exc.errno)
    return ApiError(
        503,
        f"cannot store the upload in {spool_dir} ({exc.strerror or exc}); free space there "
        "or set DATA_DIR to a writable folder on a bigger disk",
    )


def _too_large(max_bytes: int, declared: int | None) -> str:
    limit = f"{max_bytes / (1024 * 1024):g} MiB"
    said = f" (Content-Length {declared} bytes)" if declared is not None else ""
    return f"the upload is larger than MAX_UPLOAD_MB={limit}{said}"


def sweep_spool(spool_dir: Path, *, older_than: float = 3600.0) -> int:
    """Remove partial uploads a killed process left behind; returns how many."""
    if not spool_dir.is_dir():
        return 0
    now = time.time()
    removed = 0
    for path in spool_dir.glob(f"{UPLOAD_PREFIX}*{PARTIAL_SUFFIX}"):
        with contextlib.suppress(OSError):
            if now - path.stat().st_mtime > older_than:
                path.unlink()
                removed += 1
    return removed
